//! A source's background thread with its stop signal: stopping (or
//! dropping) signals it and joins it, so a source is fully gone when its
//! handle is.

use std::thread::JoinHandle;

use crossbeam::channel::{self, Receiver, Sender};

pub struct Worker {
    name: &'static str,
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Runs `body` on a thread named `name`; `body` ends when its receiver
    /// yields (a stop request) or disconnects (the handle is gone).
    pub fn spawn(
        name: &'static str,
        body: impl FnOnce(Receiver<()>) + Send + 'static,
    ) -> std::io::Result<Worker> {
        let (stop, stop_rx) = channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(stop_rx))?;
        Ok(Worker {
            name,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // The thread may have ended already (its consumer went away).
            let _ = self.stop.try_send(());
            if thread.join().is_err() {
                tracing::error!(thread = self.name, "membership thread panicked");
            }
        }
    }
}
