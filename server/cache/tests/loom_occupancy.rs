//! Loom model of the occupancy summary (occupancy.rs) with the production
//! code: a key inserted before a scan starts is never skipped by it, while
//! another scan clears the stale bit of the same count word concurrently,
//! and the summary ends exact (count and bit set, no clearing flag).
//! Fails if the inserter's increment is Relaxed, if the clearer's re-read
//! is not a Release read-modify-write, or if a scan trusts a flagged word.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p citadel-cache --release --test loom_occupancy`
#![cfg(loom)]

mod loom_common;

use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom_common::Model;

#[test]
fn a_key_inserted_before_a_scan_is_never_skipped() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let slot = m.slot(1);
        // A key came and went: count 0, bit still set (stale).
        m.occupancy().recount(slot);
        m.occupancy().cleared(slot);
        let inserted = Arc::new(AtomicBool::new(false));
        let inserter = {
            let (m, inserted) = (m.clone(), inserted.clone());
            loom::thread::spawn(move || {
                m.occupancy().claimed(slot);
                // The client's reply: whoever sees it scans after the insert.
                inserted.store(true, Ordering::Release);
            })
        };
        let clearer = {
            let m = m.clone();
            loom::thread::spawn(move || m.occupancy().try_clear(0))
        };
        let after_insert = inserted.load(Ordering::Acquire);
        let mut budget = 16;
        let found = m.occupancy().next_occupied(0, &mut budget);
        if after_insert {
            assert_eq!(found, 0, "a scan skipped a key inserted before it");
        }
        inserter.join().unwrap();
        clearer.join().unwrap();
        assert_eq!(m.occupancy().group_state(0), (1, true));
        let mut budget = 16;
        assert_eq!(m.occupancy().next_occupied(0, &mut budget), 0);
    });
}
