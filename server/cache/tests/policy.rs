//! Eviction policies: noeviction keeps every key and refuses writes with
//! OutOfMemory when full; volatile policies evict only keys with a TTL.

mod common;

use citadel_cache::{EvictionPolicy, WriteError};
use common::TempCache;

const VALUE: [u8; 200] = [7u8; 200];

fn key(prefix: &str, i: u64) -> Vec<u8> {
    format!("{prefix}:{i}").into_bytes()
}

/// Writes `prefix:0..` without a TTL until the first OutOfMemory (or
/// `limit` keys); returns how many were written.
fn fill(h: &mut citadel_cache::CacheHandle, prefix: &str, ttl: Option<u64>, limit: u64) -> u64 {
    for i in 0..limit {
        match h.set(&key(prefix, i), &VALUE, ttl) {
            Ok(()) => {}
            Err(WriteError::OutOfMemory { .. }) => return i,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    limit
}

#[test]
fn noeviction_refuses_writes_keeps_keys_and_recovers_after_delete() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    cache.set_eviction_policy(EvictionPolicy::NoEviction);
    let mut h = cache.handle().unwrap();
    let written = fill(&mut h, "k", None, 1_000_000);
    assert!(
        written > 10_000,
        "only {written} keys before the first refusal"
    );
    assert!(written < 1_000_000, "a 16 MiB cache never filled up");
    assert_eq!(cache.stats().evictions, 0);
    // Refused again, promptly, and nothing written before is lost.
    for i in 0..100 {
        let refused = h.set(&key("more", i), &VALUE, None);
        assert!(matches!(refused, Err(WriteError::OutOfMemory { .. })));
    }
    let missing = (0..written)
        .filter(|&i| h.peek(&key("k", i), |_| ()).is_none())
        .count();
    assert_eq!(missing, 0, "noeviction lost keys");
    // A multi-key update is refused too, and leaves both keys as they were.
    let r = h.update(&[b"k:0".as_slice(), b"new:0".as_slice()], |_, ch| {
        ch.put(0, &[&VALUE[..]], None)?;
        ch.put(1, &[&VALUE[..]], None)
    });
    assert!(
        matches!(r, Err(_) | Ok(Err(_))),
        "a full cache took a new key"
    );
    assert!(h.peek(b"new:0", |_| ()).is_none());
    // Deleting makes room: compaction reclaims the dead bytes.
    for i in 0..written / 4 {
        assert!(h.delete(&key("k", i)));
    }
    let again = fill(&mut h, "after", None, 1_000);
    assert_eq!(again, 1_000, "writes still refused after deletes");
    assert_eq!(cache.stats().evictions, 0);
}

#[test]
fn volatile_policy_evicts_only_keys_with_a_ttl() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    cache.set_eviction_policy(EvictionPolicy::Volatile);
    let mut h = cache.handle().unwrap();
    let permanent = 20_000;
    assert_eq!(fill(&mut h, "keep", None, permanent), permanent);
    // Churn of keys with a TTL, several times what the cache holds.
    let far = citadel_cache::unix_millis() + 3_600_000;
    let churned = fill(&mut h, "ttl", Some(far), 300_000);
    assert_eq!(churned, 300_000, "TTL keys were refused instead of evicted");
    assert!(cache.stats().evictions > 100_000, "the churn must evict");
    let missing = (0..permanent)
        .filter(|&i| h.peek(&key("keep", i), |_| ()).is_none())
        .count();
    assert_eq!(missing, 0, "volatile eviction dropped keys without a TTL");
}

#[test]
fn volatile_policy_refuses_writes_when_nothing_has_a_ttl() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    cache.set_eviction_policy(EvictionPolicy::VolatileTtl);
    let mut h = cache.handle().unwrap();
    let written = fill(&mut h, "k", None, 1_000_000);
    assert!(written < 1_000_000, "a 16 MiB cache never filled up");
    assert_eq!(cache.stats().evictions, 0);
    // Switching to an allkeys policy lets writes evict again, live.
    cache.set_eviction_policy(EvictionPolicy::AllKeys);
    assert_eq!(fill(&mut h, "next", None, 50_000), 50_000);
    assert!(cache.stats().evictions > 0);
}

#[test]
fn expired_keys_are_reclaimed_under_noeviction() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    cache.set_eviction_policy(EvictionPolicy::NoEviction);
    let mut h = cache.handle().unwrap();
    let now = h.now_ms();
    let soon = fill(&mut h, "soon", Some(now + 1_000), 1_000_000);
    assert!(soon < 1_000_000);
    // An hour later by the handle's clock, every key has expired: the
    // space is reclaimed for new writes.
    h.set_clock(now + 3_600_000);
    assert_eq!(fill(&mut h, "later", None, soon / 2), soon / 2);
}

#[test]
fn large_values_are_refused_not_evicting_under_noeviction() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    cache.set_eviction_policy(EvictionPolicy::NoEviction);
    let mut h = cache.handle().unwrap();
    let big = vec![3u8; 3 << 20];
    let mut stored = 0u64;
    for i in 0..20 {
        match h.set(&key("big", i), &big, None) {
            Ok(()) => stored += 1,
            Err(WriteError::OutOfMemory { .. }) => break,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(
        (1..20).contains(&stored),
        "stored {stored} 3 MiB values in 16 MiB"
    );
    for i in 0..stored {
        let len = h.peek(&key("big", i), |item| item.value_len());
        assert_eq!(len, Some(big.len()), "big:{i} lost");
    }
}

/// With items so small that the index fills before the value store, a
/// noeviction cache refuses its first new key (every candidate slot
/// taken) only once the index is at least 90% full, as an allkeys cache
/// first evicts from the index (capacity.rs).
#[test]
fn noeviction_index_fills_past_ninety_percent_before_refusing() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    cache.set_eviction_policy(EvictionPolicy::NoEviction);
    let mut h = cache.handle().unwrap();
    let mut n = 0u64;
    let refused = loop {
        match h.set(&n.to_le_bytes(), b"", None) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
    };
    // The index, not the value store, refused it.
    assert_eq!(refused, WriteError::OutOfMemory { len: 0 });
    let stats = cache.stats();
    let total: u64 = stats.level_fill.iter().map(|(_, t)| t).sum();
    let fill = cache.len() as f64 / total as f64;
    println!(
        "first noeviction refusal at {:.1}% index fill ({} keys, {total} slots)",
        100.0 * fill,
        cache.len()
    );
    assert!(fill >= 0.90, "refused at {:.1}% index fill", 100.0 * fill);
    assert_eq!(stats.evictions, 0);
    // Other new keys still find free slots until their candidates fill.
    let later = (n..n + 100_000)
        .filter(|i| h.set(&i.to_le_bytes(), b"", None).is_ok())
        .count();
    println!("then {later} of 100000 new keys still found a slot");
}

/// A full noeviction cache still takes the writes of commands that free
/// memory (LPOP writing a shorter list, HDEL, EXPIRE): they may use the
/// free segments kept in reserve, which other writes may not.
#[test]
fn commands_that_free_memory_use_the_reserve_when_full() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    cache.set_eviction_policy(EvictionPolicy::NoEviction);
    let mut h = cache.handle().unwrap();
    let written = fill(&mut h, "k", None, 1_000_000);
    assert!(written < 1_000_000);
    let rewrite = |h: &mut citadel_cache::CacheHandle, i: u64, len: usize| {
        h.update(&[key("k", i).as_slice()], |_, ch| {
            ch.put(0, &[&VALUE[..len]], None)
        })
    };
    // The same size as the write just refused: no room without the reserve.
    assert!(
        matches!(
            rewrite(&mut h, 0, 200),
            Ok(Err(WriteError::OutOfMemory { .. }))
        ),
        "a denyoom write took the reserve"
    );
    h.allow_reserve(true);
    for i in 0..2_000 {
        assert_eq!(
            rewrite(&mut h, i, 100),
            Ok(Ok(())),
            "shrinking k:{i} refused"
        );
    }
    let len = h.peek(b"k:1999", |item| item.value_len());
    assert_eq!(len, Some(100));
}
