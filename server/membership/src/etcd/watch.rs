//! The watch thread: reads the members' watch stream and hands each batch
//! of changes to the session thread, tagged with the watch's generation so
//! that news from a watch the session has since replaced is dropped.

use std::thread::JoinHandle;

use crossbeam::channel::Sender;

use super::client::{WatchEvent, WatchMessage, WatchStream};
use super::http::Closer;

pub enum WatchNews {
    Events(Vec<WatchEvent>),
    /// The stream ended (etcd canceled it, the connection broke): the
    /// session reads the members again and opens a new watch.
    Ended(String),
}

pub struct WatchMsg {
    pub generation: u64,
    pub news: WatchNews,
}

/// A running watch thread; dropping it closes the stream and joins it.
pub struct Watcher {
    closer: Closer,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    pub fn spawn(
        mut stream: WatchStream,
        closer: Closer,
        generation: u64,
        to_session: Sender<WatchMsg>,
    ) -> std::io::Result<Watcher> {
        let thread = std::thread::Builder::new()
            .name("citadel-etcd-watch".into())
            .spawn(move || {
                let ended = loop {
                    let news = match stream.next_message() {
                        None => break "etcd closed the watch".to_string(),
                        Some(Err(e)) => break e.to_string(),
                        Some(Ok(WatchMessage::Created)) => continue,
                        Some(Ok(WatchMessage::Canceled(why))) => {
                            break format!("etcd canceled the watch: {why}")
                        }
                        Some(Ok(WatchMessage::Events(events))) => WatchNews::Events(events),
                    };
                    if to_session.send(WatchMsg { generation, news }).is_err() {
                        return;
                    }
                };
                let news = WatchNews::Ended(ended);
                // The session may be gone already (stopping): nothing to tell.
                let _ = to_session.send(WatchMsg { generation, news });
            })?;
        Ok(Watcher {
            closer,
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.closer.close();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the etcd watch thread panicked");
            }
        }
    }
}
