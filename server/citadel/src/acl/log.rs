//! ACL LOG: the most recent refusals (commands, keys, channels, failed
//! AUTH), newest first; a refusal like a recent one (same reason,
//! context, object and user within a minute) counts on that entry, which
//! becomes the newest.

use std::collections::VecDeque;
use std::sync::Mutex;

/// How many entries are kept (Redis's `acllog-max-len` default).
pub const MAX_ENTRIES: usize = 128;
/// Refusals this close in time group into one entry (Redis: 60 s).
const GROUPING_MS: u64 = 60_000;
/// How many of the newest entries a refusal may group with (Redis: 10).
const GROUP_SEARCH: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Command,
    Key,
    Channel,
    Auth,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }
}

/// Where the refused command ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Toplevel,
    Multi,
    Lua,
}

impl Context {
    pub fn as_str(self) -> &'static str {
        match self {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub count: u64,
    pub reason: Reason,
    pub context: Context,
    /// The command's name, the key or channel, or "auth".
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    /// Unix ms of the latest refusal counted here.
    pub at_ms: u64,
    /// The client's CLIENT LIST line (without its newline).
    pub client_info: String,
}

#[derive(Default)]
pub struct Log {
    entries: Mutex<VecDeque<Entry>>,
}

impl Log {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, entry: Entry) {
        let mut entries = self.lock();
        let similar = entries.iter().take(GROUP_SEARCH).position(|e| {
            e.reason == entry.reason
                && e.context == entry.context
                && entry.at_ms.saturating_sub(e.at_ms) <= GROUPING_MS
                && e.object == entry.object
                && e.username == entry.username
        });
        // A refusal like a recent one counts there, and that entry becomes
        // the newest (as Redis moves it to the head).
        let entry = match similar.and_then(|i| entries.remove(i)) {
            Some(mut e) => {
                e.count += 1;
                e.at_ms = entry.at_ms;
                e.client_info = entry.client_info;
                e
            }
            None => entry,
        };
        entries.push_front(entry);
        entries.truncate(MAX_ENTRIES);
    }

    /// The newest `n` entries, newest first.
    pub fn newest(&self, n: usize) -> Vec<Entry> {
        self.lock().iter().take(n).cloned().collect()
    }

    pub fn reset(&self) {
        self.lock().clear();
    }
}
