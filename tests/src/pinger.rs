//! A client that keeps sending: PINGs on a connection of its own until
//! dropped. Overload protection judges a flood by the delay it causes such
//! a client (an interactive one); with none active, a bulk load or a flood
//! is alone on its core and never shed (ARCHITECTURE.md, "Overload
//! protection").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::Server;

pub struct Pinger {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Pinger {
    pub fn start(server: &Server) -> Pinger {
        let stop = Arc::new(AtomicBool::new(false));
        let mut c = server.client();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let pong: String = redis::cmd("PING").query(&mut c).unwrap();
                assert_eq!(pong, "PONG");
            }
        });
        Pinger {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let joined = t.join();
            // (Not while the test itself unwinds: a second panic aborts.)
            if !std::thread::panicking() {
                joined.expect("the pinger's PINGs all answered");
            }
        }
    }
}
