//! SCAN over the occupancy summary: a sparse cache takes a few calls, a
//! full one costs about a call per COUNT keys, and keys present for a whole
//! scan are returned under concurrent inserts, deletes and other scans.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use citadel_cache::CacheHandle;
use common::TempCache;

/// Runs a whole scan with `count`; returns the calls made and each key's visits.
fn full_scan(h: &mut CacheHandle, count: usize) -> (u64, HashMap<Vec<u8>, u32>) {
    let (mut cursor, mut calls) = (0, 0);
    let mut keys = HashMap::new();
    loop {
        cursor = h.scan(cursor, count, |item| {
            *keys.entry(item.key().to_vec()).or_insert(0) += 1;
        });
        calls += 1;
        if cursor == 0 {
            return (calls, keys);
        }
    }
}

#[test]
fn sparse_one_gib_cache_scans_in_a_few_calls() {
    let t = TempCache::new();
    let (cache, _) = t.open(1 << 30);
    let mut h = cache.handle().unwrap();
    for i in 0..16 {
        h.set(format!("key:{i}").as_bytes(), b"value", None)
            .unwrap();
    }
    let (calls, keys) = full_scan(&mut h, 10);
    println!("1 GiB, 16 keys, COUNT 10: {calls} calls");
    assert_eq!(keys.len(), 16);
    assert!(keys.values().all(|&n| n == 1));
    assert!(calls <= 10, "{calls} calls");

    // Many keys come and go: the bits they set are cleared by the next
    // scan, after which scans are fast again.
    for i in 0..100_000 {
        h.set(format!("tmp:{i}").as_bytes(), b"v", None).unwrap();
    }
    for i in 0..100_000 {
        assert!(h.delete(format!("tmp:{i}").as_bytes()));
    }
    let (stale, keys) = full_scan(&mut h, 10);
    assert_eq!(keys.len(), 16);
    let (calls, keys) = full_scan(&mut h, 10);
    println!("after churn: {stale} calls, then {calls}");
    assert_eq!(keys.len(), 16);
    assert!(
        calls <= 10,
        "{calls} calls after the stale bits were cleared"
    );
    cache.audit().unwrap();
}

#[test]
fn full_cache_returns_every_key_once_at_the_usual_cost() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    // Past the first evictions: the index and the log are full.
    for i in 0..400_000u32 {
        h.set(format!("key:{i:012}").as_bytes(), &[7u8; 32], None)
            .unwrap();
    }
    let live = cache.len();
    for count in [10usize, 100] {
        let (calls, keys) = full_scan(&mut h, count);
        println!("16 MiB full ({live} keys), COUNT {count}: {calls} calls");
        assert_eq!(keys.len() as u64, live);
        assert!(keys.values().all(|&n| n == 1), "each key once");
        let ideal = live / count as u64;
        assert!(
            calls <= ideal + ideal / 20 + 2,
            "{calls} calls, {ideal} ideal"
        );
    }
    cache.audit().unwrap();
}

#[test]
fn keys_present_throughout_are_returned_under_churn() {
    let t = TempCache::new();
    let (cache, _) = t.open(64 << 20);
    let mut h = cache.handle().unwrap();
    let stable: Vec<Vec<u8>> = (0..500)
        .map(|i| format!("stable:{i}").into_bytes())
        .collect();
    for k in &stable {
        h.set(k, b"s", None).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let churners: Vec<_> = (0..2)
        .map(|t| {
            let (cache, stop) = (cache.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut h = cache.handle().unwrap();
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let keys: Vec<Vec<u8>> = (0..2000)
                        .map(|i| format!("churn:{t}:{round}:{i}").into_bytes())
                        .collect();
                    for k in &keys {
                        h.set(k, b"c", None).unwrap();
                    }
                    for k in &keys {
                        h.delete(k);
                    }
                    round += 1;
                }
            })
        })
        .collect();
    let scanners: Vec<_> = (0..2)
        .map(|s| {
            let (cache, stable) = (cache.clone(), stable.clone());
            std::thread::spawn(move || {
                let mut h = cache.handle().unwrap();
                for _ in 0..200 {
                    let (_, keys) = full_scan(&mut h, 1 + 2 * s);
                    let missing = stable.iter().filter(|k| !keys.contains_key(*k)).count();
                    assert_eq!(missing, 0, "stable keys missed by a scan");
                }
            })
        })
        .collect();
    for s in scanners {
        s.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for c in churners {
        c.join().unwrap();
    }
    let (_, keys) = full_scan(&mut h, 10);
    let keys: HashSet<_> = keys.into_keys().collect();
    assert_eq!(keys, stable.into_iter().collect());
    cache.audit().unwrap();
}
