//! Sending answers: at once, or after a delay from a timer thread (so one
//! slow key holds up no other), noting each served key in the served log
//! first (a test that sees the value also sees the line).

use std::collections::BinaryHeap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use citadel_plugin::{Reply, Responder};

/// The served log: one line per load answered.
#[derive(Clone, Debug, Default)]
pub struct Served(Option<Arc<Mutex<File>>>);

impl Served {
    pub fn open(path: Option<&Path>) -> std::io::Result<Self> {
        let Some(path) = path else {
            return Ok(Self(None));
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self(Some(Arc::new(Mutex::new(file)))))
    }

    fn record(&self, key: &[u8]) {
        if let Some(file) = &self.0 {
            let mut line = key.to_vec();
            line.push(b'\n');
            // One write per line (O_APPEND): lines never interleave.
            let result = file
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write_all(&line);
            if let Err(e) = result {
                tracing::warn!("writing the served log: {e}");
            }
        }
    }
}

/// An answer on its way.
pub struct Answer {
    pub key: Vec<u8>,
    pub reply: Reply,
    pub responder: Responder,
}

impl Answer {
    fn send(self, served: &Served) {
        served.record(&self.key);
        self.responder.reply(self.reply);
    }
}

struct Due {
    at: Instant,
    seq: u64,
    answer: Answer,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    /// Reversed: the heap's top is the earliest.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Sends answers, each when its delay has passed.
pub struct Answerer {
    served: Served,
    timer: mpsc::Sender<(Instant, Answer)>,
}

impl Answerer {
    pub fn start(served: Served) -> Self {
        let (timer, due) = mpsc::channel();
        let log = served.clone();
        std::thread::Builder::new()
            .name("answer-timer".into())
            .spawn(move || run_timer(&due, &log))
            .expect("spawn the timer thread");
        Self { served, timer }
    }

    pub fn send(&self, answer: Answer, delay: Duration) {
        if delay.is_zero() {
            return answer.send(&self.served);
        }
        // Fails only once the timer thread is gone (the process exits):
        // the dropped responder then fails the request.
        let _ = self.timer.send((Instant::now() + delay, answer));
    }
}

fn run_timer(due: &mpsc::Receiver<(Instant, Answer)>, served: &Served) {
    let mut heap = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|d: &Due| d.at <= now) {
            heap.pop().expect("peeked").answer.send(served);
        }
        let next = match heap.peek() {
            Some(d) => due.recv_timeout(d.at.saturating_duration_since(now)),
            None => due.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok((at, answer)) => {
                seq += 1;
                heap.push(Due { at, seq, answer });
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
