//! Loom model of the segment free list (segment.rs, a Treiber stack with an
//! ABA tag) with the production code: concurrent pops and pushes never lose
//! or duplicate a segment, including the ABA interleaving (a pop that read
//! `next` of a segment popped and pushed back meanwhile).
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p citadel-cache --release --test loom_free_list`
#![cfg(loom)]

mod loom_common;

use std::sync::Arc;

use loom_common::{Model, SEGMENTS};

#[test]
fn no_segment_is_lost_or_duplicated() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        for id in (0..SEGMENTS).rev() {
            m.free_list().push(m.seg(id));
        }
        // A pops one segment and pushes it back; B pops two and pushes
        // them back in the other order: the ABA pattern for A's pop.
        let a = {
            let m = m.clone();
            loom::thread::spawn(move || {
                let s = m.free_list().pop().expect("three segments, two takers");
                m.free_list().push(s);
            })
        };
        let b = {
            let m = m.clone();
            loom::thread::spawn(move || {
                let x = m.free_list().pop().expect("at least two left");
                let y = m.free_list().pop().expect("at least one left");
                m.free_list().push(x);
                m.free_list().push(y);
            })
        };
        a.join().unwrap();
        b.join().unwrap();
        let mut seen = Vec::new();
        while let Some(seg) = m.free_list().pop() {
            seen.push(seg.id);
            assert!(seen.len() <= SEGMENTS as usize, "a cycle: {seen:?}");
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..SEGMENTS).collect::<Vec<_>>(),
            "lost or duplicated"
        );
    });
}
