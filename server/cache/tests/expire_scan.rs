//! The active expiry scan (`CacheHandle::maintain`): keys whose TTL ran
//! out go without being read, from a writer's active segment and from
//! sealed segments whose other items live on, each reported once as
//! expired and counted; keys without a TTL, with a later one, or written
//! again since never go; and writers racing the scan lose nothing.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use citadel_cache::{CacheHandle, KeyChange};
use common::TempCache;

fn stored(h: &mut CacheHandle, key: &[u8]) -> Option<Vec<u8>> {
    h.get(key, |item| {
        let mut v = Vec::new();
        item.write_value_to(&mut v);
        v
    })
}

fn expired_keys(h: &mut CacheHandle) -> Vec<String> {
    let mut got = Vec::new();
    let lost = h.drain_changes(|key, change, _| {
        if change == KeyChange::Expired {
            got.push(String::from_utf8_lossy(key).into_owned());
        }
    });
    assert!(!lost);
    got.sort();
    got
}

#[test]
fn expired_keys_go_unread_and_are_reported_once() {
    let t = TempCache::new();
    let (cache, _) = t.open(64 << 20);
    let mut h = cache.handle().unwrap();
    let now = citadel_cache::unix_millis();
    h.set_clock(now);
    h.record_changes(true);
    // Short TTLs among keys without one and keys with a long one, enough
    // of each to fill and seal segments; one short key written again
    // without a TTL, one with a later TTL.
    let value = vec![b'v'; 100];
    for i in 0..30_000 {
        let ttl = match i % 3 {
            0 => Some(now + 1_000),
            1 => Some(now + 3_600_000),
            _ => None,
        };
        h.set(format!("k{i}").as_bytes(), &value, ttl).unwrap();
    }
    h.set(b"k0", b"again", None).unwrap();
    h.set(b"k3", b"later", Some(now + 7_200_000)).unwrap();
    expired_keys(&mut h);
    let before = cache.stats();
    assert_eq!(before.keys, 30_000);

    // Nothing has expired yet: the scan removes nothing.
    for _ in 0..100 {
        assert_eq!(h.maintain(), 0);
    }
    assert!(expired_keys(&mut h).is_empty());

    h.set_clock(now + 2_000);
    let mut expired = 0;
    for _ in 0..1_000 {
        expired += h.maintain();
    }
    let want: Vec<String> = {
        let mut keys: Vec<String> = (0..30_000)
            .filter(|i| i % 3 == 0 && *i != 0 && *i != 3)
            .map(|i| format!("k{i}"))
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(expired, want.len() as u64);
    assert_eq!(expired_keys(&mut h), want, "each expired key reported once");
    let after = cache.stats();
    assert_eq!(after.keys, 30_000 - want.len() as u64);
    assert_eq!(
        after.keys_with_ttl,
        before.keys_with_ttl - want.len() as u64
    );
    assert_eq!(after.expirations - before.expirations, want.len() as u64);
    assert_eq!(stored(&mut h, b"k0"), Some(b"again".to_vec()));
    assert_eq!(stored(&mut h, b"k3"), Some(b"later".to_vec()));
    for i in (1..30_000).filter(|i| i % 3 != 0) {
        assert!(h.get(format!("k{i}").as_bytes(), |_| ()).is_some(), "k{i}");
    }
    // The long TTLs stay until they run out; then they go too.
    for _ in 0..100 {
        assert_eq!(h.maintain(), 0);
    }
    h.set_clock(now + 8_000_000);
    let mut late = 0;
    for _ in 0..1_000 {
        late += h.maintain();
    }
    assert_eq!(late, 10_001);
    // Left: the 10,000 keys without a TTL and k0.
    assert_eq!(cache.stats().keys, 10_001);
}

/// Writers set keys again and again, alternately with a TTL that a
/// scanning thread (its clock an hour ahead) sees as expired and without
/// one; at the end every key whose last write had no TTL holds that
/// write's value: the scan never took a newer item for the old one.
#[test]
fn writers_racing_the_scan_lose_no_key_without_a_ttl() {
    const KEYS: usize = 2_000;
    let t = TempCache::new();
    let (cache, _) = t.open(32 << 20);
    let stop = Arc::new(AtomicBool::new(false));
    let scanner = {
        let (cache, stop) = (cache.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut h = cache.handle().unwrap();
            let mut expired = 0;
            while !stop.load(Ordering::Relaxed) {
                h.set_clock(citadel_cache::unix_millis() + 3_600_000);
                expired += h.maintain();
            }
            expired
        })
    };
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let mut h = cache.handle().unwrap();
                let mut last = HashMap::new();
                for round in 0..60u64 {
                    for i in (w as usize..KEYS).step_by(2) {
                        let now = citadel_cache::unix_millis();
                        h.set_clock(now);
                        let key = format!("k{i}");
                        let value = format!("{round}:{i}");
                        let ttl = (round + i as u64).is_multiple_of(2);
                        let expire_at = ttl.then_some(now + 60_000);
                        h.set(key.as_bytes(), value.as_bytes(), expire_at).unwrap();
                        last.insert(key, (value, ttl));
                    }
                }
                last
            })
        })
        .collect();
    let mut last = HashMap::new();
    for w in writers {
        last.extend(w.join().unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let expired = scanner.join().unwrap();
    assert!(expired > 0, "the scan found expired keys to race");
    let mut h = cache.handle().unwrap();
    for (key, (value, ttl)) in &last {
        let got = stored(&mut h, key.as_bytes());
        if *ttl {
            assert!(got.is_none() || got.as_deref() == Some(value.as_bytes()));
        } else {
            assert_eq!(got.as_deref(), Some(value.as_bytes()), "{key}");
        }
    }
}

/// While expiry is held (CLIENT PAUSE), an expired key reads as absent
/// but stays: neither reads nor upkeep remove it or report it; once the
/// hold ends both do.
#[test]
fn held_expiry_hides_expired_keys_without_removing_them() {
    let t = TempCache::new();
    let (cache, _) = t.open(64 << 20);
    let mut h = cache.handle().unwrap();
    let now = citadel_cache::unix_millis();
    h.set_clock(now);
    h.record_changes(true);
    let value = vec![b'v'; 100];
    for i in 0..20_000 {
        h.set(format!("k{i}").as_bytes(), &value, Some(now + 1_000))
            .unwrap();
    }
    cache.hold_expiry_until(now + 60_000);
    h.set_clock(now + 2_000);
    assert_eq!(stored(&mut h, b"k1"), None);
    for _ in 0..200 {
        h.maintain();
    }
    assert!(expired_keys(&mut h).is_empty());
    assert_eq!(cache.stats().keys, 20_000);
    cache.hold_expiry_until(0);
    assert_eq!(stored(&mut h, b"k1"), None);
    assert_eq!(expired_keys(&mut h), ["k1"]);
    for _ in 0..200 {
        h.maintain();
    }
    assert_eq!(expired_keys(&mut h).len(), 19_999);
    assert_eq!(cache.stats().keys, 0);
}
