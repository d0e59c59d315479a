//! Each writer's intent journal: what a multi-key write is doing to the
//! index, so that recovery after a `kill -9` finishes it or undoes it.
//!
//! A write that changes one key needs no journal (one entry store is
//! atomic). One that changes several (MSET, RENAME, a transaction) locks
//! their homes, claims slots for new keys, then stores the other entries;
//! a crash in between would leave some keys new and others old. So
//! `update::publish`, with the homes locked:
//!
//! 1. writes a *claim* record (key hash, new entry) per new key, then
//!    state CLAIMING; claims the slots;
//! 2. writes an *apply* record per replaced or removed key (slot, new
//!    entry; or slot, old entry to clear), then state APPLYING; applies;
//! 3. sets state IDLE, and only then unlocks the homes.
//!
//! Recovery (`Cache::replay_journals`, before the index is recounted):
//! CLAIMING: clears every candidate slot of a claimed key that still holds
//! the claimed entry (all old); APPLYING: stores every apply record (all
//! new; idempotent). A write with nothing to apply skips APPLYING (a crash
//! then rolls its claims back); one with no new key skips CLAIMING.
//!
//! ORDERING: only recovery, in a later process, reads a journal. It sees a
//! prefix, in program order, of the dead writer's stores (a signal stops a
//! thread between two instructions; its earlier stores all reach memory),
//! so what matters is that neither the compiler nor a weakly ordered CPU
//! moves a store across the state stores: records and counts are stored
//! before the Release store of a state, and every index store of the write
//! that must follow a state is itself a Release store or CAS (claims,
//! entry stores), which keeps the earlier state store before it; IDLE is a
//! Release store after the write's entry stores, and the unlock a Release
//! store after IDLE.

use crate::cache::Cache;
use crate::index::{candidate_slots, Entry, KeyHash};
use crate::layout::{Geometry, BUCKET_SLOTS, JOURNAL_BYTES, MAX_WRITERS};
use crate::region::Region;
use crate::sync::{AtomicU64, Ordering};

pub(crate) const IDLE: u64 = 0;
pub(crate) const CLAIMING: u64 = 1;
pub(crate) const APPLYING: u64 = 2;

// Header words, then the records.
pub(crate) const J_STATE: usize = 0;
pub(crate) const J_CLAIMS: usize = 8;
pub(crate) const J_CLAIMS_SUM: usize = 16;
pub(crate) const J_APPLIES: usize = 24;
pub(crate) const J_APPLIES_SUM: usize = 32;
/// Where the apply records start (after the claims, if any).
pub(crate) const J_APPLIES_FIRST: usize = 40;
pub(crate) const J_RECORDS: usize = 64;
pub(crate) const RECORD_BYTES: usize = 16;

/// Records one journal holds: claims, then applies.
pub(crate) const RECORDS: usize = (JOURNAL_BYTES - J_RECORDS) / RECORD_BYTES;

/// An apply record's first word is the slot's offset (8-aligned) or'ed
/// with its kind: store the record's word, or clear the slot if it still
/// holds the record's entry (a removed key's slot may be claimed by
/// another key once cleared).
pub(crate) const STORE: u64 = 0;
pub(crate) const CLEAR_IF: u64 = 1;
pub(crate) const KIND_MASK: u64 = 7;

/// A record: two words.
pub(crate) type Record = (u64, u64);

/// A claim record: a new key's hash and the entry it claims a slot with.
pub(crate) fn claim(h: KeyHash, entry: Entry) -> Record {
    (h.0, entry.0)
}

/// An apply record storing `entry` in the slot at `slot`.
pub(crate) fn store(slot: usize, entry: Entry) -> Record {
    (slot as u64 | STORE, entry.0)
}

/// An apply record clearing the slot at `slot` if it still holds `old`.
pub(crate) fn clear_if(slot: usize, old: Entry) -> Record {
    (slot as u64 | CLEAR_IF, old.0)
}

/// One writer slot's journal (only that slot's handle writes it).
pub(crate) struct Journal<'c> {
    region: &'c Region,
    base: usize,
}

impl Cache {
    pub(crate) fn journal(&self, writer: usize) -> Journal<'_> {
        Journal {
            region: &self.region,
            base: self.geo.journals_off + writer * JOURNAL_BYTES,
        }
    }
}

impl<'c> Journal<'c> {
    pub(crate) fn word(&self, off: usize) -> &'c AtomicU64 {
        self.region.u64_at(self.base + off)
    }

    pub(crate) fn record_words(&self, i: usize) -> (&'c AtomicU64, &'c AtomicU64) {
        let at = J_RECORDS + i * RECORD_BYTES;
        (self.word(at), self.word(at + 8))
    }

    /// Stores `records` from record `first` on, their count and checksum.
    fn write(&self, first: usize, records: &[Record], count_at: usize, sum_at: usize) {
        for (i, &(a, b)) in records.iter().enumerate() {
            let (wa, wb) = self.record_words(first + i);
            // ORDERING: Relaxed: one writer (this slot's handle); the
            // Release store of the state that follows orders them first.
            wa.store(a, Ordering::Relaxed);
            // ORDERING: Relaxed, as above.
            wb.store(b, Ordering::Relaxed);
        }
        // ORDERING: Relaxed, as above.
        self.word(count_at)
            .store(records.len() as u64, Ordering::Relaxed);
        // ORDERING: Relaxed, as above.
        self.word(sum_at)
            .store(checksum(records), Ordering::Relaxed);
    }

    fn set_state(&self, state: u64) {
        // ORDERING: Release: the records and counts stored before (and,
        // for IDLE, the write's entry stores) stay before it; see the
        // module comment.
        self.word(J_STATE).store(state, Ordering::Release);
    }

    /// Step 1: the claims about to be made (the homes are locked).
    pub fn begin_claims(&self, claims: &[Record]) {
        self.write(0, claims, J_CLAIMS, J_CLAIMS_SUM);
        self.set_state(CLAIMING);
    }

    /// Step 2: every claim succeeded; the stores about to be made. The
    /// claim records stay: a crash while these are written still rolls
    /// the claims back.
    pub fn begin_apply(&self, claims: usize, applies: &[Record]) {
        self.write(claims, applies, J_APPLIES, J_APPLIES_SUM);
        // ORDERING: Relaxed, as the records (`write`).
        self.word(J_APPLIES_FIRST)
            .store(claims as u64, Ordering::Relaxed);
        self.set_state(APPLYING);
    }

    /// Step 3: the write is complete (or undone); before the unlock.
    pub fn finish(&self) {
        self.set_state(IDLE);
    }

    /// The valid records of a journal found in `state`, None when its
    /// counts or checksum are wrong (a corrupt file: nothing is replayed).
    fn recorded(&self, state: u64) -> Option<Vec<Record>> {
        // ORDERING (all loads here): Relaxed: recovery is single-threaded
        // and the writer's process is gone.
        let (first, count, sum) = match state {
            CLAIMING => (0, J_CLAIMS, J_CLAIMS_SUM),
            _ => (
                self.word(J_APPLIES_FIRST).load(Ordering::Relaxed) as usize,
                J_APPLIES,
                J_APPLIES_SUM,
            ),
        };
        let count = self.word(count).load(Ordering::Relaxed) as usize;
        let sum = self.word(sum).load(Ordering::Relaxed);
        if first > RECORDS || count > RECORDS - first {
            return None;
        }
        let records: Vec<Record> = (first..first + count)
            .map(|i| {
                let (a, b) = self.record_words(i);
                (a.load(Ordering::Relaxed), b.load(Ordering::Relaxed))
            })
            .collect();
        (checksum(&records) == sum).then_some(records)
    }
}

/// What recovery did with the journals it found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Replayed {
    /// Writes caught while claiming slots, undone.
    pub rolled_back: u64,
    /// Writes caught while applying, completed.
    pub rolled_forward: u64,
    /// Journals in an unknown state or failing their checksum (corrupt).
    pub ignored: u64,
}

impl Cache {
    /// Finishes or undoes the multi-key write each writer had in progress
    /// at a crash, and leaves every journal IDLE. Runs single-threaded,
    /// before recovery validates and recounts the index (it only stores
    /// entry words; live counts, key counts, overflow counts and the
    /// occupancy summary are all recomputed after it).
    pub(crate) fn replay_journals(&self) -> Replayed {
        let mut done = Replayed::default();
        for writer in 0..MAX_WRITERS {
            let journal = self.journal(writer);
            // ORDERING: Relaxed: single-threaded (see `recorded`).
            let state = journal.word(J_STATE).load(Ordering::Relaxed);
            if state == IDLE {
                continue;
            }
            match (state, journal.recorded(state)) {
                (CLAIMING, Some(claims)) => {
                    claims.iter().for_each(|&c| self.undo_claim(c));
                    done.rolled_back += 1;
                }
                (APPLYING, Some(applies)) => {
                    applies.iter().for_each(|&a| self.redo_apply(a));
                    done.rolled_forward += 1;
                }
                _ => {
                    tracing::warn!(writer, state, "ignoring a corrupt write journal");
                    done.ignored += 1;
                }
            }
            // ORDERING: Relaxed: single-threaded.
            journal.word(J_STATE).store(IDLE, Ordering::Relaxed);
        }
        done
    }

    /// Leaves every journal IDLE (a clean attach: a journal that is not is
    /// corrupt, and must not be replayed after some later crash). Reads
    /// only the state words, so untouched journal pages stay unallocated.
    pub(crate) fn reset_journals(&self) {
        for writer in 0..MAX_WRITERS {
            let state = self.journal(writer).word(J_STATE);
            // ORDERING: Relaxed: single-threaded (attach).
            if state.load(Ordering::Relaxed) != IDLE {
                // ORDERING: Relaxed, as above.
                state.store(IDLE, Ordering::Relaxed);
            }
        }
    }

    /// Clears the slot a claim took, if it did.
    fn undo_claim(&self, (hash, entry): Record) {
        let claimed = Entry(entry);
        for slot in candidate_slots(&self.geo, KeyHash(hash)) {
            let word = self.region.u64_at(slot);
            // ORDERING: Relaxed: single-threaded recovery.
            let cur = Entry(word.load(Ordering::Relaxed));
            if !cur.is_empty() && cur.location() == claimed.location() {
                // ORDERING: Relaxed, as above.
                word.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Redoes one apply record (idempotent).
    fn redo_apply(&self, (slot_kind, entry): Record) {
        let slot = (slot_kind & !KIND_MASK) as usize;
        if !is_slot(&self.geo, slot) {
            return;
        }
        let word = self.region.u64_at(slot);
        match slot_kind & KIND_MASK {
            // ORDERING: Relaxed: single-threaded recovery.
            STORE => word.store(entry, Ordering::Relaxed),
            CLEAR_IF => {
                // ORDERING: Relaxed, as above.
                let cur = Entry(word.load(Ordering::Relaxed));
                if cur.location() == Entry(entry).location() {
                    // ORDERING: Relaxed, as above.
                    word.store(0, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

/// True when `off` is an index entry slot (not a home's lock word, not
/// outside the index): a corrupt record must not store anywhere else.
pub(crate) fn is_slot(geo: &Geometry, off: usize) -> bool {
    let index = geo.level_off[0]..geo.level_off[0] + geo.total_buckets() as usize * 64;
    if !index.contains(&off) || !off.is_multiple_of(8) {
        return false;
    }
    let lock_word =
        off < geo.level_off[1] && (off - geo.level_off[0]).is_multiple_of(BUCKET_SLOTS * 8);
    !lock_word
}

/// Detects a torn or corrupt journal (not an adversary): a 64-bit mix of
/// the count and every record word.
pub(crate) fn checksum(records: &[Record]) -> u64 {
    let mix = |mut x: u64| {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    };
    records
        .iter()
        .fold(mix(records.len() as u64 + 1), |h, &(a, b)| {
            mix(mix(h ^ a).wrapping_add(b))
        })
}
