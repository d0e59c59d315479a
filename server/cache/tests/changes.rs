//! The change log (`record_changes` / `drain_changes`): every way a key
//! changes is reported once, in order, with the tag current at the time.

mod common;

use citadel_cache::{CacheHandle, KeyChange};
use common::TempCache;

fn drain(h: &mut CacheHandle) -> Vec<(String, KeyChange, u16)> {
    let mut got = Vec::new();
    let lost = h.drain_changes(|key, change, tag| {
        got.push((String::from_utf8_lossy(key).into_owned(), change, tag))
    });
    assert!(!lost);
    got
}

#[test]
fn writes_deletes_expiry_and_transactions_are_reported() {
    let t = TempCache::new();
    let (cache, _) = t.open(32 << 20);
    let mut h = cache.handle().unwrap();
    h.set(b"before", b"v", None).unwrap();
    assert!(drain(&mut h).is_empty(), "nothing is recorded while off");
    h.record_changes(true);
    h.set_change_tag(7);
    h.set(b"a", b"1", None).unwrap();
    h.set(b"a", b"2", Some(h.now_ms() + 60_000)).unwrap();
    assert!(h.delete(b"a"));
    assert!(!h.delete(b"a"), "deleting a missing key changes nothing");
    h.get(b"before", |_| ());
    let written = |ttl, created| KeyChange::Written { ttl, created };
    assert_eq!(
        drain(&mut h),
        vec![
            ("a".into(), written(false, true), 7),
            ("a".into(), written(true, false), 7),
            ("a".into(), KeyChange::Deleted, 7),
        ]
    );
    // Lazy expiry on read.
    h.set(b"e", b"x", Some(h.now_ms() + 5)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    h.set_clock(citadel_cache::unix_millis());
    drain(&mut h);
    assert!(h.get(b"e", |_| ()).is_none());
    assert_eq!(drain(&mut h), vec![("e".into(), KeyChange::Expired, 7)]);
    // A transaction reports at its commit, each key with its own tag; a
    // key it creates is created by its first write only.
    h.set(b"t2", b"old", None).unwrap();
    drain(&mut h);
    h.txn_begin(&[b"t1", b"t2"]);
    h.set_change_tag(1);
    h.set(b"t1", b"x", None).unwrap();
    h.set(b"t1", b"xx", None).unwrap();
    h.set_change_tag(2);
    h.set(b"t2", b"y", None).unwrap();
    assert!(drain(&mut h).is_empty(), "nothing before the commit");
    assert_eq!(h.txn_commit(), Ok(true));
    assert_eq!(
        drain(&mut h),
        vec![
            ("t1".into(), written(false, true), 1),
            ("t1".into(), written(false, false), 1),
            ("t2".into(), written(false, false), 2)
        ]
    );
    // A deleted key written again in one transaction is created again.
    h.txn_begin(&[b"t2"]);
    assert!(h.delete(b"t2"));
    h.set(b"t2", b"z", None).unwrap();
    assert_eq!(h.txn_commit(), Ok(true));
    assert_eq!(
        drain(&mut h),
        vec![
            ("t2".into(), KeyChange::Deleted, 2),
            ("t2".into(), written(false, true), 2)
        ]
    );
}

/// Multi-key updates (RENAME, LMOVE, SUNIONSTORE) and one-key updates
/// (LPUSH, HSET) say which keys they created.
#[test]
fn updates_report_created_keys() {
    let t = TempCache::new();
    let (cache, _) = t.open(32 << 20);
    let mut h = cache.handle().unwrap();
    h.set(b"old", b"1", None).unwrap();
    h.record_changes(true);
    h.set_change_tag(3);
    h.update(&[b"old", b"fresh"], |_, ch| {
        ch.put(0, &[b"2"], None)?;
        ch.put(1, &[b"3"], None)
    })
    .unwrap()
    .unwrap();
    h.update(&[b"one"], |_, ch| ch.put(0, &[b"4"], None))
        .unwrap()
        .unwrap();
    h.update(&[b"one"], |_, ch| ch.put(0, &[b"5"], Some(u64::MAX / 2)))
        .unwrap()
        .unwrap();
    let written = |ttl, created| KeyChange::Written { ttl, created };
    assert_eq!(
        drain(&mut h),
        vec![
            ("old".into(), written(false, false), 3),
            ("fresh".into(), written(false, true), 3),
            ("one".into(), written(false, true), 3),
            ("one".into(), written(true, false), 3),
        ]
    );
}

#[test]
fn evictions_are_reported() {
    let t = TempCache::new();
    let (cache, _) = t.open(8 << 20);
    let mut h = cache.handle().unwrap();
    h.record_changes(true);
    let value = vec![7u8; 2000];
    for i in 0..20_000 {
        h.set(format!("k{i}").as_bytes(), &value, None).unwrap();
    }
    let evicted = drain(&mut h)
        .into_iter()
        .filter(|(_, c, _)| *c == KeyChange::Evicted)
        .count();
    let stats = cache.stats();
    assert!(evicted > 1000, "{evicted} evictions reported");
    assert_eq!(
        evicted as u64, stats.evictions,
        "each eviction reported once"
    );
}
