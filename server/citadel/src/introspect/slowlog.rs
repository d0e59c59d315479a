//! One thread's slow log (SLOWLOG): commands that ran past
//! `slowlog-log-slower-than`. Each thread appends to its own log (a lock
//! only it takes, except when SLOWLOG reads); ids are global, so SLOWLOG
//! GET merges the threads' logs newest first.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

/// Redis keeps at most this many arguments of a command...
const MAX_ARGS: usize = 32;
/// ...and this many bytes of each.
const MAX_ARG_BYTES: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowEntry {
    pub id: u64,
    /// Unix seconds when the command ran.
    pub unix_secs: u64,
    pub micros: u64,
    /// The arguments, trimmed as Redis trims them.
    pub args: Vec<Vec<u8>>,
    pub addr: String,
    pub name: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct SlowLog {
    entries: Mutex<VecDeque<SlowEntry>>,
}

impl SlowLog {
    fn locked(&self) -> MutexGuard<'_, VecDeque<SlowEntry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `entry`, dropping the oldest past `max_len`.
    pub fn push(&self, entry: SlowEntry, max_len: usize) {
        let mut log = self.locked();
        log.push_back(entry);
        while log.len() > max_len {
            log.pop_front();
        }
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Vec<SlowEntry> {
        self.locked().iter().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.locked().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&self) {
        self.locked().clear();
    }
}

/// A command's arguments as the slow log keeps them: at most 32 (the last
/// kept one says how many more there were), each at most 128 bytes
/// followed by "... (N more bytes)".
pub fn trimmed_args<'a>(args: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<Vec<u8>> {
    let argc = args.len();
    let kept = argc.min(MAX_ARGS);
    let mut out = Vec::with_capacity(kept);
    for (i, arg) in args.enumerate().take(kept) {
        if i == kept - 1 && kept < argc {
            out.push(format!("... ({} more arguments)", argc - kept + 1).into_bytes());
            break;
        }
        if arg.len() > MAX_ARG_BYTES {
            let mut a = arg[..MAX_ARG_BYTES].to_vec();
            let more = format!("... ({} more bytes)", arg.len() - MAX_ARG_BYTES);
            a.extend_from_slice(more.as_bytes());
            out.push(a);
        } else {
            out.push(arg.to_vec());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_trimmed_as_redis_does() {
        let many: Vec<Vec<u8>> = (0..40).map(|i| i.to_string().into_bytes()).collect();
        let t = trimmed_args(many.iter().map(|a| a.as_slice()));
        assert_eq!(t.len(), 32);
        assert_eq!(t[30], b"30");
        assert_eq!(t[31], b"... (9 more arguments)");
        let long = vec![b'x'; 200];
        let t = trimmed_args([long.as_slice()].into_iter());
        assert_eq!(t[0].len(), 128 + "... (72 more bytes)".len());
        assert!(t[0].ends_with(b"... (72 more bytes)"));
    }

    #[test]
    fn the_log_keeps_the_newest() {
        let log = SlowLog::default();
        for id in 0..5 {
            let e = SlowEntry {
                id,
                unix_secs: 0,
                micros: 1,
                args: vec![],
                addr: String::new(),
                name: vec![],
            };
            log.push(e, 3);
        }
        let ids: Vec<u64> = log.entries().iter().map(|e| e.id).collect();
        assert_eq!(ids, [2, 3, 4]);
    }
}
