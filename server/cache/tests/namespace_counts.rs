//! Each namespace's key counters (DBSIZE and INFO keyspace of Redis's
//! numbered databases, in O(writers)) agree with a walk of the index after
//! every kind of write: sets, multi-key updates across namespaces,
//! transactions, deletions, TTLs given and taken away, expiry, eviction
//! and FLUSHDB, by several threads at once; and they survive a clean
//! restart, a recovery and an upgrade from the layout before them.

mod common;

use std::sync::Arc;

use citadel_cache::{Cache, CacheHandle};
use common::TempCache;

const MEMORY: u64 = 16 << 20;
const NAMESPACES: u8 = 4;

fn next(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
}

/// One thread's random writes, each in a random namespace of the first
/// `NAMESPACES` (several keys of one update in different namespaces,
/// through RAW stored keys, as MOVE and COPY ... DB write them).
fn churn(cache: &Arc<Cache>, seed: u64, ops: u32) {
    let mut h = cache.handle().unwrap();
    let mut rng = seed | 1;
    let now = citadel_cache::unix_millis();
    h.set_clock(now);
    let value = vec![b'v'; 200];
    for _ in 0..ops {
        let ns = (next(&mut rng) % u64::from(NAMESPACES)) as u8;
        h.note_namespace_written(ns);
        h.set_namespace(ns);
        let key = format!("k{}", next(&mut rng) % 3_000);
        let ttl = match next(&mut rng) % 4 {
            0 => Some(now + 1 + next(&mut rng) % 200),
            1 => Some(now + 3_600_000),
            _ => None,
        };
        match next(&mut rng) % 8 {
            0..=2 => h.set(key.as_bytes(), &value, ttl).unwrap(),
            3 => {
                h.delete(key.as_bytes());
            }
            4 => {
                // A multi-key update: one key put, one deleted.
                let other = format!("k{}", next(&mut rng) % 3_000);
                let keys: [&[u8]; 2] = [key.as_bytes(), other.as_bytes()];
                h.update(&keys, |_, c| {
                    c.put(0, &[&value[..]], ttl)?;
                    c.delete(1);
                    Ok::<_, citadel_cache::WriteError>(())
                })
                .unwrap()
                .unwrap();
            }
            5 => {
                // Keys of two namespaces in one update (RAW stored keys).
                let to = (next(&mut rng) % u64::from(NAMESPACES)) as u8;
                h.note_namespace_written(to);
                let (mut from_key, mut to_key) = (Vec::new(), Vec::new());
                h.append_stored_key(key.as_bytes(), &mut from_key);
                h.set_namespace(to);
                h.append_stored_key(key.as_bytes(), &mut to_key);
                h.set_namespace(u8::MAX);
                let keys: [&[u8]; 2] = [&from_key, &to_key];
                h.update(&keys, |items, c| {
                    if items[0].is_some() && from_key != to_key {
                        c.put(1, &[&value[..]], None)?;
                        c.delete(0);
                    }
                    Ok::<_, citadel_cache::WriteError>(())
                })
                .unwrap()
                .unwrap();
            }
            6 => {
                // A transaction over two keys.
                let other = format!("k{}", next(&mut rng) % 3_000);
                let keys: [&[u8]; 2] = [key.as_bytes(), other.as_bytes()];
                loop {
                    h.txn_begin(&keys);
                    h.set(key.as_bytes(), &value, None).unwrap();
                    h.set(other.as_bytes(), &value, ttl).unwrap();
                    if h.txn_commit().unwrap() {
                        break;
                    }
                }
            }
            _ => {
                // PERSIST or EXPIRE: the same value, another TTL.
                let keys: [&[u8]; 1] = [key.as_bytes()];
                h.update(&keys, |items, c| {
                    if let Some(item) = &items[0] {
                        let mut v = Vec::new();
                        item.write_value_to(&mut v);
                        c.put(0, &[&v[..]], ttl)?;
                    }
                    Ok::<_, citadel_cache::WriteError>(())
                })
                .unwrap()
                .unwrap();
            }
        }
    }
}

/// Every namespace's counters against the index (`Cache::audit` walks it).
fn assert_counts_hold(cache: &Cache, when: &str) {
    cache
        .audit()
        .unwrap_or_else(|e| panic!("{when}: counters and index disagree: {e}"));
}

fn namespace_len(h: &mut CacheHandle, ns: u8) -> u64 {
    h.set_namespace(ns);
    h.namespace_len()
}

#[test]
fn every_namespace_is_counted_through_writes_expiry_eviction_and_restarts() {
    let t = TempCache::new();
    let (cache, _) = t.open(MEMORY);
    std::thread::scope(|s| {
        for seed in 1..=3u64 {
            let cache = cache.clone();
            s.spawn(move || churn(&cache, seed * 0x9E37_79B9, 60_000));
        }
    });
    let mut h = cache.handle().unwrap();
    assert!(
        cache.stats().evictions > 0,
        "the cache is small enough that the writes evict"
    );
    assert_counts_hold(&cache, "after the writes");
    let before: Vec<u64> = (0..NAMESPACES)
        .map(|ns| namespace_len(&mut h, ns))
        .collect();
    assert!(
        before.iter().all(|&n| n > 0),
        "every namespace holds keys: {before:?}"
    );

    // Expiry: the short TTLs run out and maintenance reaps them.
    let expired = cache.stats().expirations;
    h.set_clock(citadel_cache::unix_millis() + 10_000);
    for _ in 0..200 {
        h.maintain();
    }
    assert!(
        cache.stats().expirations > expired,
        "keys with short TTLs expired"
    );
    assert_counts_hold(&cache, "after expiry");

    // FLUSHDB of one namespace.
    h.set_namespace(2);
    h.flush_namespace();
    assert_eq!(namespace_len(&mut h, 2), 0);
    assert_counts_hold(&cache, "after FLUSHDB");
    // RANDOMKEY: none in the emptied namespace (at once, by its
    // counters), one of its own in another.
    let mut key = Vec::new();
    h.set_namespace(2);
    assert!(!h.random_key(&mut key), "namespace 2 is empty");
    h.set_namespace(1);
    assert!(h.random_key(&mut key), "namespace 1 holds keys");
    assert!(key.starts_with(b"k"), "{key:?} is namespace 1's key");
    let counts: Vec<_> = (0..NAMESPACES)
        .map(|ns| cache.namespace_counts(ns))
        .collect();
    drop(h);

    // A clean restart keeps them; a recovery recounts them.
    cache.close();
    drop(cache);
    let (cache, report) = t.open(MEMORY);
    assert!(report.clean, "{report:?}");
    let after: Vec<_> = (0..NAMESPACES)
        .map(|ns| cache.namespace_counts(ns))
        .collect();
    assert_eq!(after, counts, "a clean restart keeps the counters");
    drop(cache);
    let (cache, report) = t.open(MEMORY);
    assert!(!report.clean, "not closed: recovered ({report:?})");
    let recounted: Vec<_> = (0..NAMESPACES)
        .map(|ns| cache.namespace_counts(ns))
        .collect();
    assert_eq!(recounted, counts, "recovery's recount agrees");
    assert_counts_hold(&cache, "after recovery");
}
