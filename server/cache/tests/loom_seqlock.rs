//! Loom model of the bucket seqlock (index.rs) with the production code:
//! optimistic readers (`read_begin`, entry load, byte copy, `read_validate`)
//! against a writer that publishes a new item under the lock, and against
//! one that deletes an item, frees its segment and reuses it (free-list pop
//! and its fence): a validated read is never torn or reused.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p citadel-cache --release --test loom_seqlock`
#![cfg(loom)]

mod loom_common;

use std::sync::Arc;

use citadel_cache::loom_model::*;
use loom::sync::atomic::Ordering;
use loom_common::Model;

/// Item bytes start off word alignment, so copies have partial edge words.
const AT: usize = 3;
const LEN: usize = 9;

fn write_item(m: &Model, seg: u32, byte: u8) {
    m.region.store_bytes(m.seg(seg).data + AT, &[byte; LEN]);
}

/// One optimistic read of the home bucket's slot 1: Some(bytes) if validated.
fn read(m: &Model) -> Option<Option<(Entry, [u8; LEN])>> {
    let locks = m.locks();
    let v = locks.read_begin(0);
    let e = Entry(m.region.u64_at(m.slot(1)).load(Ordering::Acquire));
    let mut bytes = [0u8; LEN];
    if !e.is_empty() {
        let data = m.seg(e.seg()).data;
        m.region.shared(data + AT, LEN).unwrap().copy_to(&mut bytes);
    }
    locks
        .read_validate(0, v)
        .then_some((!e.is_empty()).then_some((e, bytes)))
}

#[test]
fn readers_see_whole_items_across_a_publish() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        write_item(&m, 0, b'a');
        m.region
            .u64_at(m.slot(1))
            .store(Entry::new(7, 0, AT as u32, 0).0, Ordering::Relaxed);
        let writer = {
            let m = m.clone();
            loom::thread::spawn(move || {
                // As update.rs: write the new item unlocked, then lock at
                // the version read, publish the entry, unlock.
                write_item(&m, 1, b'b');
                let locks = m.locks();
                let v = locks.lock(0);
                let e = Entry::new(7, 1, AT as u32, 0);
                m.region.u64_at(m.slot(1)).store(e.0, Ordering::Release);
                locks.unlock(0, v);
            })
        };
        if let Some(Some((e, bytes))) = read(&m) {
            let want = if e.seg() == 0 { b'a' } else { b'b' };
            assert_eq!(bytes, [want; LEN], "validated read of {e:?}");
        }
        writer.join().unwrap();
    });
}

#[test]
fn readers_never_validate_reused_bytes() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        write_item(&m, 0, b'a');
        m.region
            .u64_at(m.slot(1))
            .store(Entry::new(7, 0, AT as u32, 0).0, Ordering::Relaxed);
        let writer = {
            let m = m.clone();
            loom::thread::spawn(move || {
                // Delete the item under its home lock, free its segment,
                // then take it again and overwrite the bytes.
                let locks = m.locks();
                let v = locks.lock(0);
                m.region.u64_at(m.slot(1)).store(0, Ordering::Release);
                locks.unlock(0, v);
                m.free_list().push(m.seg(0));
                let seg = m.free_list().pop().expect("the segment just freed");
                assert_eq!(seg.id, 0);
                write_item(&m, 0, b'z');
            })
        };
        if let Some(Some((_, bytes))) = read(&m) {
            assert_eq!(bytes, [b'a'; LEN], "a validated read saw reused bytes");
        }
        writer.join().unwrap();
    });
}
