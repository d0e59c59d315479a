//! The keys a handle changed, for whoever must hear of it (keyspace
//! notifications, client-side caching invalidations): every publication,
//! lazy expiry, active expiry and eviction by this handle's writer, in
//! order, each with the tag the caller set when it happened (the server's
//! command). Off by default: recording costs a branch when off. Pages of
//! big collections are not keys (owned.rs): their changes are not logged.

use crate::owned::parse_page_key;
use crate::region::SharedBytes;

/// How a key changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyChange {
    /// A new value was published (`ttl`: it carries an expiry; `created`:
    /// no live key was there before, as Redis's `new` event has it, an
    /// expired item or a read-through negative marker counting as none).
    Written { ttl: bool, created: bool },
    /// A live key was deleted.
    Deleted,
    /// The key expired and was removed.
    Expired,
    /// The key was evicted to make room.
    Evicted,
}

/// Past this many unread entries the log stops recording and says so
/// (`drain` returns true): the reader must then assume anything changed.
const MAX_ENTRIES: usize = 1 << 20;

#[derive(Default)]
pub(crate) struct ChangeLog {
    pub enabled: bool,
    /// Tag given to changes recorded from now on.
    pub tag: u16,
    overflowed: bool,
    keys: Vec<u8>,
    entries: Vec<(u32, u32, KeyChange, u16)>,
}

impl ChangeLog {
    fn room(&mut self) -> bool {
        if self.entries.len() >= MAX_ENTRIES {
            self.overflowed = true;
        }
        !self.overflowed
    }

    pub fn record(&mut self, key: &[u8], change: KeyChange, tag: u16) {
        if self.enabled && parse_page_key(key).is_none() && self.room() {
            let start = self.keys.len() as u32;
            self.keys.extend_from_slice(key);
            self.entries
                .push((start, self.keys.len() as u32, change, tag));
        }
    }

    /// Records a key read from the mapping (its bytes must be stable: the
    /// caller holds its home lock or sweeps its EVICTING segment).
    pub fn record_shared(&mut self, key: SharedBytes<'_>, change: KeyChange) {
        if self.enabled && self.room() {
            let start = self.keys.len() as u32;
            key.append_to(&mut self.keys);
            if parse_page_key(&self.keys[start as usize..]).is_some() {
                self.keys.truncate(start as usize);
                return;
            }
            let tag = self.tag;
            self.entries
                .push((start, self.keys.len() as u32, change, tag));
        }
    }

    /// Hands over every recorded change in order and empties the log; true
    /// when some were lost to the size bound.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8], KeyChange, u16)) -> bool {
        for &(a, b, change, tag) in &self.entries {
            f(&self.keys[a as usize..b as usize], change, tag);
        }
        self.entries.clear();
        self.keys.clear();
        std::mem::take(&mut self.overflowed)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && !self.overflowed
    }
}
