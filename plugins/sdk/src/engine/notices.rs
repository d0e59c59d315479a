//! Unsolicited records on their way to the server. Invalidated keys that
//! reach the loop together are batched into `Invalidation` records
//! (bounded in size); records are spread over the ring pairs round robin
//! (the server's cache is shared: one pair suffices).

use citadel_proto::load::encode_invalidation;
use citadel_proto::{Format, Kind};
use flatbuffers::FlatBufferBuilder;

use super::lane::Lane;

/// Most keys in one record.
const MAX_KEYS: usize = 256;
/// Most key bytes in one record.
const MAX_BYTES: usize = 32 << 10;

#[derive(Default)]
pub(crate) struct Notices {
    keys: Vec<Vec<u8>>,
    bytes: usize,
    sealed: Vec<(Kind, Format, Vec<u8>)>,
    next_pair: usize,
    fbb: FlatBufferBuilder<'static>,
}

impl Notices {
    /// `key` changed; an empty key means anything may have changed.
    pub(crate) fn key(&mut self, key: Vec<u8>) {
        if key.is_empty() {
            return self.resync();
        }
        self.bytes += key.len();
        self.keys.push(key);
        if self.keys.len() >= MAX_KEYS || self.bytes >= MAX_BYTES {
            self.seal();
        }
    }

    /// Changes may have been missed.
    pub(crate) fn resync(&mut self) {
        self.seal();
        let none: [&[u8]; 0] = [];
        let payload = encode_invalidation(&mut self.fbb, &none, true).to_vec();
        self.sealed
            .push((Kind::Invalidation, Format::FlatBuffer, payload));
    }

    /// Any other record, after the keys so far.
    pub(crate) fn record(&mut self, kind: Kind, format: Format, payload: Vec<u8>) {
        self.seal();
        self.sealed.push((kind, format, payload));
    }

    /// Queues every record on the lanes.
    pub(crate) fn send(&mut self, lanes: &mut [Lane]) {
        self.seal();
        if lanes.is_empty() {
            self.sealed.clear();
            return;
        }
        for (kind, format, payload) in self.sealed.drain(..) {
            let lane = &mut lanes[self.next_pair % lanes.len()];
            lane.book.push_unsolicited(kind, format, payload);
            self.next_pair = self.next_pair.wrapping_add(1);
        }
    }

    fn seal(&mut self) {
        if !self.keys.is_empty() {
            let payload = encode_invalidation(&mut self.fbb, &self.keys, false).to_vec();
            self.sealed
                .push((Kind::Invalidation, Format::FlatBuffer, payload));
            self.keys.clear();
            self.bytes = 0;
        }
    }
}
