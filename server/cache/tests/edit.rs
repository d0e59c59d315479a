//! In-place edits of editable items (`Changes::edit`): what they may
//! change, when they are refused, that a crash keeps them served, and
//! that readers on other threads never see one half stored.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use citadel_cache::checked_editable::{make, next_edit, verify_whole, LEN};
use citadel_cache::{CacheHandle, EditRefused, KeyChange, PutOptions, WriteError};
use common::TempCache;

const EDITABLE: PutOptions = PutOptions {
    expire_at: None,
    soft_expire_at: None,
    negative: false,
    kind: citadel_cache::ValueKind::String,
    editable: true,
    raw_string: false,
};

fn value(h: &mut CacheHandle, key: &[u8]) -> Option<Vec<u8>> {
    h.get(key, |item| {
        let mut v = Vec::new();
        item.write_value_to(&mut v);
        v
    })
}

/// One edit of `key` chosen by `x` (in place); Err when it was refused.
fn edit(h: &mut CacheHandle, key: &[u8], x: u64) -> Result<(), EditRefused> {
    let mut copy = Vec::new();
    h.update(&[key], |items, ch| {
        let item = items[0].as_ref().expect("the key is there");
        copy.clear();
        item.write_value_to(&mut copy);
        let writes = next_edit(key, &copy, x).expect("a whole value");
        let writes: Vec<(usize, &[u8])> = writes.iter().map(|(at, b)| (*at, &b[..])).collect();
        ch.edit(0, item, &writes)
    })
    .expect("update")
}

fn put_editable(h: &mut CacheHandle, key: &[u8], bytes: &[u8], opts: PutOptions) {
    h.update(&[key], |_, ch| ch.put_with(0, &[bytes], opts))
        .expect("update")
        .expect("put");
}

fn key(i: u64) -> Vec<u8> {
    format!("edit:{i}").into_bytes()
}

#[test]
fn edits_change_the_value_in_place_and_survive_a_crash() {
    let t = TempCache::new();
    let rounds = 40u64;
    {
        let (cache, _) = t.open(16 << 20);
        let mut h = cache.handle().unwrap();
        h.record_changes(true);
        for i in 0..200 {
            put_editable(&mut h, &key(i), &make(&key(i)), EDITABLE);
        }
        let used = cache.stats();
        for round in 1..=rounds {
            for i in 0..200 {
                edit(&mut h, &key(i), round * 7919 + i).unwrap();
            }
        }
        // No new items: the log's write offsets did not move.
        assert_eq!(cache.stats().used_bytes, used.used_bytes);
        let mut edits = 0;
        h.drain_changes(|_, change, _| {
            edits += u64::from(matches!(change, KeyChange::Written { ttl: false, .. }));
        });
        assert_eq!(edits, 200 * (rounds + 1), "an edit is logged as a write");
        for i in 0..200 {
            let v = value(&mut h, &key(i)).unwrap();
            assert_eq!(v.len(), LEN);
            assert_eq!(verify_whole(&key(i), &v), Some(rounds), "key {i}");
        }
        // Not closed: the file is left as a crash leaves it, and every
        // segment is suspect on attach (its items' checks are verified).
    }
    let (cache, report) = t.open(16 << 20);
    assert!(!report.clean && report.dropped == 0, "{report:?}");
    let mut h = cache.handle().unwrap();
    for i in 0..200 {
        let v = value(&mut h, &key(i)).expect("an edited item keeps its check");
        assert_eq!(verify_whole(&key(i), &v), Some(rounds), "key {i}");
    }
    edit(&mut h, &key(0), 1).unwrap();
    cache.audit().unwrap();
}

#[test]
fn edits_are_refused_where_they_cannot_be_stored_in_place() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    let (k, other) = (key(1), key(2));
    let refused = |h: &mut CacheHandle, keys: &[&[u8]], at: usize| {
        h.update(keys, |items, ch| {
            let item = items[0].as_ref().expect("present");
            ch.edit(0, item, &[(at, &[1u8; 8][..])])
        })
        .unwrap()
    };
    // Written without `editable`: the same bytes, no region.
    put_editable(&mut h, &k, &make(&k), PutOptions::default());
    assert_eq!(refused(&mut h, &[&k], 16), Err(EditRefused::NotEditable));
    // Editable with a trailer naming no valid region: checked whole.
    let mut bad = make(&k);
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&(n as u32).to_le_bytes());
    put_editable(&mut h, &k, &bad, EDITABLE);
    assert_eq!(refused(&mut h, &[&k], 16), Err(EditRefused::NotEditable));
    assert_eq!(value(&mut h, &k), Some(bad));
    put_editable(&mut h, &k, &make(&k), EDITABLE);
    // Outside the region: the guard, the trailer, across the region's end.
    for at in [0, 8, LEN - 8, LEN - 12] {
        assert_eq!(refused(&mut h, &[&k], at), Err(EditRefused::OutsideRegion));
    }
    assert_eq!(refused(&mut h, &[&k], 16), Ok(()));
    // An update of two keys, or a key already put in this update.
    put_editable(&mut h, &other, &make(&other), EDITABLE);
    assert_eq!(
        refused(&mut h, &[&k, &other], 16),
        Err(EditRefused::NotOneKey)
    );
    let put_first = h
        .update(&[&k], |items, ch| {
            let item = items[0].as_ref().expect("present");
            ch.put_with(0, &[&make(&k)], EDITABLE)?;
            Ok::<_, WriteError>(ch.edit(0, item, &[(16, &[1u8][..])]))
        })
        .unwrap()
        .unwrap();
    assert_eq!(put_first, Err(EditRefused::NotOneKey));
    // A put after an edit replaces it: the new item, unedited.
    h.update(&[&k], |items, ch| {
        let item = items[0].as_ref().expect("present");
        ch.edit(0, item, &[(16, &[1u8][..])]).unwrap();
        ch.put_with(0, &[&make(&other)], EDITABLE)
    })
    .unwrap()
    .unwrap();
    assert_eq!(value(&mut h, &k), Some(make(&other)));
}

#[test]
fn readers_on_other_threads_never_see_an_edit_half_stored() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    const KEYS: u64 = 4;
    for i in 0..KEYS {
        put_editable(&mut h, &key(i), &make(&key(i)), EDITABLE);
    }
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (cache, done) = (Arc::clone(&cache), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut h = cache.handle().unwrap();
                let mut reads = 0u64;
                while !done.load(Ordering::Relaxed) || reads < 1000 {
                    let k = key((reads + r) % KEYS);
                    let v = value(&mut h, &k).expect("never deleted");
                    assert!(verify_whole(&k, &v).is_some(), "a torn read of {k:?}");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..40_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        edit(&mut h, &key(x % KEYS), x >> 8).unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("reader") >= 1000);
    }
}

/// One edit of `key` chosen by `x`, planned without an update
/// (`edit_in_place`: the bytes straight into the engine's edit buffer);
/// None when declined (no live item, a torn read, a refused write).
fn edit_planned(h: &mut CacheHandle, key: &[u8], x: u64) -> Option<u64> {
    let hash = h.key_hash(key);
    let mut copy = Vec::new();
    h.edit_in_place(key, hash, |item, edit| {
        copy.clear();
        item.write_value_to(&mut copy);
        let round = verify_whole(key, &copy)?;
        let writes = next_edit(key, &copy, x)?;
        let buffer = edit.buffer();
        for (_, bytes) in &writes {
            buffer.extend_from_slice(bytes);
        }
        let spans: Vec<(usize, usize)> = writes.iter().map(|(at, b)| (*at, b.len())).collect();
        edit.record(item, &spans).ok()?;
        Some(round + 1)
    })
}

/// One edit of `key` chosen by `x` made inside an update: planned in
/// place (`Changes::plan_edit`) or (`in_place` false) recorded through
/// `Changes::edit`; None when it could not be (a torn read, a refusal).
fn edit_in_update(h: &mut CacheHandle, key: &[u8], x: u64, in_place: bool) -> Option<u64> {
    h.update(&[key], |items, changes| {
        let item = items[0].as_ref()?;
        let mut copy = Vec::new();
        item.write_value_to(&mut copy);
        let round = verify_whole(key, &copy)? + 1;
        let writes = next_edit(key, &copy, x)?;
        if !in_place {
            let writes: Vec<(usize, &[u8])> = writes.iter().map(|(at, b)| (*at, &b[..])).collect();
            return changes.edit(0, item, &writes).ok().map(|()| round);
        }
        changes.plan_edit(0, item, |item, edit| {
            let buffer = edit.buffer();
            writes.iter().for_each(|(_, b)| buffer.extend_from_slice(b));
            let spans: Vec<_> = writes.iter().map(|(at, b)| (*at, b.len())).collect();
            edit.record(item, &spans).ok()?;
            Some(round)
        })
    })
    .expect("update")
}

#[test]
fn edits_planned_in_place_are_stored_logged_and_refused_like_update_edits() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    h.record_changes(true);
    for i in 0..50 {
        put_editable(&mut h, &key(i), &make(&key(i)), EDITABLE);
    }
    let used = cache.stats().used_bytes;
    for round in 1..=20u64 {
        for i in 0..50 {
            assert_eq!(edit_planned(&mut h, &key(i), round * 31 + i), Some(round));
        }
    }
    assert_eq!(cache.stats().used_bytes, used, "no new items");
    let mut writes = 0;
    h.drain_changes(|_, change, _| {
        writes += u64::from(matches!(change, KeyChange::Written { ttl: false, .. }))
    });
    assert_eq!(writes, 50 * 21, "each edit is logged as a write");
    for i in 0..50 {
        let v = value(&mut h, &key(i)).unwrap();
        assert_eq!(verify_whole(&key(i), &v), Some(20));
    }
    // Declined, nothing written: no key, a value written without
    // `editable`, a write outside the region, bytes the writes do not name.
    assert_eq!(edit_planned(&mut h, b"edit:missing", 1), None);
    let k = key(7);
    put_editable(&mut h, &k, &make(&k), PutOptions::default());
    assert_eq!(edit_planned(&mut h, &k, 1), None);
    put_editable(&mut h, &k, &make(&k), EDITABLE);
    let hash = h.key_hash(&k);
    for (at, len, planned) in [(0, 8, 8), (LEN - 8, 8, 8), (16, 8, 9)] {
        let mut refused = None;
        let stored = h.edit_in_place(&k, hash, |item, edit| {
            edit.buffer().resize(planned, 1);
            refused = edit.record(item, &[(at, len)]).err();
            Some(())
        });
        let want = match planned == len {
            true => EditRefused::OutsideRegion,
            false => EditRefused::Unplanned,
        };
        assert_eq!(
            (stored, refused),
            (None, Some(want)),
            "no edit recorded: declined"
        );
    }
    assert_eq!(value(&mut h, &k), Some(make(&k)));
    // Inside a transaction the general update runs.
    h.txn_begin(&[&k]);
    assert_eq!(edit_planned(&mut h, &k, 1), None);
    h.txn_abort();
    assert_eq!(edit_planned(&mut h, &k, 1), Some(1));
    // Inside an update: planned in place or recorded by `Changes::edit`;
    // a transaction's update plans none.
    assert_eq!(edit_in_update(&mut h, &k, 2, true), Some(2));
    assert_eq!(edit_in_update(&mut h, &k, 3, false), Some(3));
    h.txn_begin(&[&k]);
    assert_eq!(edit_in_update(&mut h, &k, 4, true), None);
    h.txn_abort();
    assert_eq!(verify_whole(&k, &value(&mut h, &k).unwrap()), Some(3));
    cache.audit().unwrap();
}

/// Two writers edit the same keys in place (one alone, one inside
/// updates, half of those through `Changes::edit`), each
/// planning from bytes the other may be storing at that moment, while a
/// reader checks every value:
/// a plan from a torn read is never stored (its lock at the version read
/// fails and it plans again), so no reader sees a torn value and no edit
/// is lost (each moves its key's round by one).
#[test]
fn edits_planned_from_unlocked_reads_are_never_stored_torn_or_lost() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    const KEYS: u64 = 3;
    const EDITS: u64 = 20_000;
    for i in 0..KEYS {
        put_editable(&mut h, &key(i), &make(&key(i)), EDITABLE);
    }
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (cache, done) = (Arc::clone(&cache), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut h = cache.handle().unwrap();
            let mut reads = 0u64;
            while !done.load(Ordering::Relaxed) || reads < 1000 {
                let k = key(reads % KEYS);
                let v = value(&mut h, &k).expect("never deleted");
                assert!(verify_whole(&k, &v).is_some(), "a torn read of {k:?}");
                reads += 1;
            }
        })
    };
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || {
                let mut h = cache.handle().unwrap();
                let mut x = 0x2545_F491_4F6C_DD1Du64 ^ w;
                for n in 0..EDITS {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Alone, or offered by an update (in place or by the
                    // update's closure); a declined plan (a torn read) is
                    // planned again.
                    let k = key(n % KEYS);
                    let edit = |h: &mut CacheHandle| match (w, n % 2) {
                        (0, _) => edit_planned(h, &k, x >> 8),
                        (_, m) => edit_in_update(h, &k, x >> 8, m == 0),
                    };
                    while edit(&mut h).is_none() {}
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    done.store(true, Ordering::Relaxed);
    reader.join().expect("reader");
    let rounds: u64 = (0..KEYS)
        .map(|i| verify_whole(&key(i), &value(&mut h, &key(i)).unwrap()).unwrap())
        .sum();
    assert_eq!(rounds, 2 * EDITS, "every edit stored once");
}
