//! SIGTERM / SIGINT handling. The handler itself only writes to a self-pipe
//! (signal-hook's iterator); a small watcher thread reads it and requests a
//! graceful shutdown. A second signal while shutting down exits at once.

use std::io;
use std::thread::JoinHandle;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

pub struct SignalWatcher {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

/// Starts watching; `on_first` runs (in the watcher thread) on the first signal.
pub fn watch(on_first: impl FnOnce(i32) + Send + 'static) -> io::Result<SignalWatcher> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("citadel-signals".into())
        .spawn(move || {
            let mut on_first = Some(on_first);
            for signal in signals.forever() {
                match on_first.take() {
                    Some(f) => {
                        tracing::info!(
                            signal = name(signal),
                            "shutting down (send again to exit immediately)"
                        );
                        f(signal);
                    }
                    None => {
                        tracing::warn!(
                            signal = name(signal),
                            "second signal: exiting without a clean shutdown"
                        );
                        std::process::exit(1);
                    }
                }
            }
        })?;
    Ok(SignalWatcher {
        handle,
        thread: Some(thread),
    })
}

fn name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        _ => "signal",
    }
}

impl Drop for SignalWatcher {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
