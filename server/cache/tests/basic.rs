//! Behaviour of single operations, restarts and limits.

mod common;

use citadel_cache::{Cache, OpenError, PutOptions, WriteError};
use common::TempCache;

fn get(h: &mut citadel_cache::CacheHandle, key: &[u8]) -> Option<Vec<u8>> {
    h.get(key, |item| {
        let mut v = Vec::new();
        item.write_value_to(&mut v);
        v
    })
}

#[test]
fn set_get_delete_and_overwrite() {
    let t = TempCache::new();
    let (cache, report) = t.open(16 << 20);
    assert!(!report.warm);
    let mut h = cache.handle().unwrap();
    assert_eq!(get(&mut h, b"k"), None);
    h.set(b"k", b"v1", None).unwrap();
    assert_eq!(get(&mut h, b"k").as_deref(), Some(&b"v1"[..]));
    h.set(b"k", b"value two", None).unwrap();
    assert_eq!(get(&mut h, b"k").as_deref(), Some(&b"value two"[..]));
    assert_eq!(cache.len(), 1);
    // Prefetch hints are harmless for present and absent keys alike.
    for key in [&b"k"[..], b"absent"] {
        let hash = h.prefetch_bucket(key);
        h.prefetch_item(hash);
    }
    assert_eq!(get(&mut h, b"k").as_deref(), Some(&b"value two"[..]));
    assert!(h.delete(b"k"));
    assert!(!h.delete(b"k"));
    assert_eq!(get(&mut h, b"k"), None);
    assert_eq!(cache.len(), 0);
    h.set(b"", b"", None).unwrap();
    assert_eq!(get(&mut h, b"").as_deref(), Some(&b""[..]));
    let s = cache.stats();
    assert!(s.hits >= 3 && s.misses >= 2, "{s:?}");
}

#[test]
fn a_key_looked_up_with_the_hash_the_cache_gave_is_found_as_by_key() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    let hash = h.prefetch_key(b"k");
    assert_eq!(hash, h.key_hash(b"k"));
    assert_eq!(u64::from(hash), h.prefetch_bucket(b"k"));
    h.set_hashed(b"k", hash, b"v", None).unwrap();
    assert_eq!(get(&mut h, b"k").as_deref(), Some(&b"v"[..]));
    let value = h.get_hashed(b"k", hash, |item| item.value_len());
    assert_eq!(value, Some(1));
    assert!(h.delete(b"k"));
    assert_eq!(h.get_hashed(b"k", hash, |_| ()), None);
}

/// A hash passed with another key would look up the wrong bucket: debug
/// builds refuse it.
#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "the hash of another key")]
fn a_hash_passed_with_another_key_is_refused_in_debug_builds() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    let hash = h.key_hash(b"a");
    let _ = h.set_hashed(b"b", hash, b"v", None);
}

#[test]
fn expiry_is_lazy_and_counted() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    h.set_clock(1_000_000);
    h.set(b"a", b"1", Some(1_000_500)).unwrap();
    h.set(b"b", b"2", None).unwrap();
    assert_eq!(h.get(b"a", |i| i.expire_at()), Some(Some(1_000_500)));
    assert_eq!(cache.keys_with_ttl(), 1);
    h.set_clock(1_000_500);
    assert_eq!(get(&mut h, b"a"), None);
    assert_eq!(get(&mut h, b"b").as_deref(), Some(&b"2"[..]));
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.stats().expirations, 1);
    assert_eq!(cache.keys_with_ttl(), 0);
    h.set(b"b", b"2", Some(2_000_000)).unwrap();
    assert_eq!(cache.keys_with_ttl(), 1);
    h.set(b"b", b"2", None).unwrap();
    assert_eq!(cache.keys_with_ttl(), 0);
}

/// SET (`set_one.rs`) over what a key may hold: an expired item (counted
/// as an expiration; the key and TTL counts stay right) and a negative
/// marker (replaced in place), each logged as `update` logs it.
#[test]
fn set_replaces_expired_items_and_negative_markers() {
    use citadel_cache::KeyChange::{Expired, Written};
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    h.set_clock(1_000);
    h.record_changes(true);
    h.set(b"e", b"old", Some(1_500)).unwrap();
    h.set_clock(2_000);
    h.set(b"e", b"new", None).unwrap();
    assert_eq!(get(&mut h, b"e").as_deref(), Some(&b"new"[..]));
    assert_eq!(
        (
            cache.len(),
            cache.stats().expirations,
            cache.keys_with_ttl()
        ),
        (1, 1, 0)
    );
    let mut log = Vec::new();
    h.drain_changes(|key, change, _| log.push((key.to_vec(), change)));
    let e = b"e".to_vec();
    assert_eq!(
        log,
        [
            (
                e.clone(),
                Written {
                    ttl: true,
                    created: true
                }
            ),
            (e.clone(), Expired),
            (
                e,
                Written {
                    ttl: false,
                    created: true
                }
            )
        ]
    );
    let negative = PutOptions {
        negative: true,
        ..PutOptions::default()
    };
    h.update(&[b"n"], |_, ch| ch.put_with(0, &[b""], negative))
        .unwrap()
        .unwrap();
    h.drain_changes(|_, _, _| ());
    h.set(b"n", b"v", None).unwrap();
    assert_eq!(h.get_any(b"n", |i| i.is_negative()), Some(false));
    log.clear();
    h.drain_changes(|key, change, _| log.push((key.to_vec(), change)));
    let created = Written {
        ttl: false,
        created: true,
    };
    assert_eq!(log, [(b"n".to_vec(), created)], "a marker is no key");
    assert_eq!(cache.len(), 2);
}

#[test]
fn update_is_read_modify_write() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    for _ in 0..100 {
        h.update(&[b"n"], |items, ch| {
            let n: u64 = items[0]
                .and_then(|i| {
                    std::str::from_utf8(i.small_value(&mut [0; 32])?)
                        .ok()?
                        .parse()
                        .ok()
                })
                .unwrap_or(0);
            ch.put(0, &[(n + 1).to_string().as_bytes()], None)
        })
        .unwrap()
        .unwrap();
    }
    assert_eq!(get(&mut h, b"n").as_deref(), Some(&b"100"[..]));
    // Rename: two keys, atomically.
    h.update(&[b"n", b"m"], |items, ch| {
        // The value moves straight from the cache into the new item.
        let v = items[0].unwrap().contiguous().unwrap();
        ch.put(1, &[v], None).unwrap();
        ch.delete(0);
    })
    .unwrap();
    assert_eq!(get(&mut h, b"n"), None);
    assert_eq!(get(&mut h, b"m").as_deref(), Some(&b"100"[..]));
    assert_eq!(cache.len(), 1);
    // The same key twice in one update is one key.
    h.update(&[b"m", b"m"], |_, ch| ch.put(1, &[b"x"], None))
        .unwrap()
        .unwrap();
    assert_eq!(get(&mut h, b"m").as_deref(), Some(&b"x"[..]));
    assert_eq!(cache.len(), 1);
}

#[test]
fn large_values_span_segments_and_limits_hold() {
    let t = TempCache::new();
    let (cache, _) = t.open(256 << 20);
    let mut h = cache.handle().unwrap();
    let big: Vec<u8> = (0..50_000_000u32)
        .map(|i| (i * 7 + i / 1000) as u8)
        .collect();
    h.set(b"big", &big, Some(u64::MAX - 1)).unwrap();
    let got = get(&mut h, b"big").unwrap();
    assert!(got == big, "50 MB value round trip");
    assert_eq!(h.get(b"big", |i| i.contiguous().is_none()), Some(true));
    let too_big = vec![0u8; (64 << 20) + 1];
    assert_eq!(
        h.set(b"huge", &too_big, None),
        Err(WriteError::ValueTooLarge {
            len: (64 << 20) + 1,
            max: 64 << 20
        })
    );
    assert!(h.set(&vec![b'k'; 300_000], b"v", None).is_err());
    let free_before = cache.stats().segments_free;
    assert!(h.delete(b"big"));
    assert!(
        cache.stats().segments_free >= free_before + 47,
        "chunks freed"
    );
}

#[test]
fn eviction_keeps_memory_bounded_and_writes_succeed() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    let value = vec![7u8; 1000];
    for i in 0..100_000u32 {
        h.set(format!("key:{i}").as_bytes(), &value, None).unwrap();
    }
    let s = cache.stats();
    assert!(s.evictions > 0, "{s:?}");
    assert!(s.file_bytes <= 16 << 20);
    assert!(
        cache.len() > 5_000 && cache.len() < 16_000,
        "{}",
        cache.len()
    );
    assert!(
        get(&mut h, b"key:99999").is_some(),
        "the newest key survives"
    );
}

#[test]
fn scan_visits_every_key_once_random_and_flush() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    for i in 0..5000u32 {
        h.set(format!("k{i}").as_bytes(), b"v", None).unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = 0;
    loop {
        cursor = h.scan(cursor, 100, |item| {
            seen.insert(item.key().to_vec());
        });
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 5000);
    let mut k = Vec::new();
    assert!(h.random_key(&mut k));
    assert!(seen.contains(&k));
    h.flush_all();
    assert_eq!(cache.len(), 0);
    assert!(!h.random_key(&mut Vec::new()));
    assert_eq!(get(&mut h, b"k1"), None);
}

#[test]
fn clean_restart_is_warm_and_fresh_recreates() {
    let t = TempCache::new();
    {
        let (cache, _) = t.open(16 << 20);
        let mut h = cache.handle().unwrap();
        h.set(b"persist", b"yes", None).unwrap();
        drop(h);
        cache.close();
    }
    let (cache, report) = t.open(16 << 20);
    assert!(
        report.warm && report.clean && report.keys == 1,
        "{report:?}"
    );
    let mut h = cache.handle().unwrap();
    assert_eq!(get(&mut h, b"persist").as_deref(), Some(&b"yes"[..]));
    drop(h);
    drop(cache);
    // A second process (or open) cannot attach while one holds it.
    let (cache, _) = t.open(16 << 20);
    assert!(matches!(
        Cache::open(t.config(16 << 20)),
        Err(OpenError::InUse { .. })
    ));
    drop(cache);
    assert!(matches!(
        Cache::open(t.config(32 << 20)),
        Err(OpenError::SizeMismatch { .. })
    ));
    let mut cfg = t.config(32 << 20);
    cfg.fresh = true;
    let (cache, report) = Cache::open(cfg).unwrap();
    assert!(!report.warm && cache.is_empty());
}

#[test]
fn corrupt_header_is_reported_not_recreated() {
    let t = TempCache::new();
    {
        let (cache, _) = t.open(16 << 20);
        cache.handle().unwrap().set(b"k", b"v", None).unwrap();
        cache.close();
    }
    let mut bytes = std::fs::read(&t.path).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&t.path, &bytes).unwrap();
    let err = Cache::open(t.config(16 << 20))
        .err()
        .expect("corrupt header refused");
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("--fresh"));
    assert_eq!(
        std::fs::read(&t.path).unwrap(),
        bytes,
        "the file is left as it was"
    );
}

#[test]
fn negative_markers_are_absent_except_to_get_any() {
    use citadel_cache::PutOptions;
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    h.set_clock(1_000);
    let neg = PutOptions {
        expire_at: Some(5_000),
        soft_expire_at: None,
        negative: true,
        ..PutOptions::default()
    };
    h.update(&[b"user:404"], |_, ch| ch.put_with(0, &[b""], neg))
        .unwrap()
        .unwrap();
    assert_eq!(get(&mut h, b"user:404"), None, "plain reads see no key");
    assert_eq!(h.peek(b"user:404", |_| ()), None);
    assert_eq!(
        h.get_any(b"user:404", |i| (i.is_negative(), i.expire_at())),
        Some((true, Some(5_000)))
    );
    let mut seen = 0;
    h.scan(0, 1000, |_| seen += 1);
    assert_eq!(seen, 0, "SCAN skips negative markers");
    assert!(!h
        .update(&[b"user:404"], |items, _| items[0].is_some())
        .unwrap());
    // A real write replaces the marker in place.
    let fresh = PutOptions {
        expire_at: Some(9_000),
        soft_expire_at: Some(6_000),
        ..PutOptions::default()
    };
    h.update(&[b"user:404"], |_, ch| ch.put_with(0, &[b"alice"], fresh))
        .unwrap()
        .unwrap();
    assert_eq!(
        h.get_any(b"user:404", |i| (
            i.is_negative(),
            i.soft_expire_at(),
            i.put_options()
        )),
        Some((false, Some(6_000), fresh))
    );
    assert_eq!(get(&mut h, b"user:404").as_deref(), Some(&b"alice"[..]));
    assert_eq!(cache.len(), 1);
    h.set_clock(9_000);
    assert_eq!(
        h.get_any(b"user:404", |_| ()),
        None,
        "the hard expiry still applies"
    );
}

/// Frequency-based retention: keys that keep being read survive heavy churn
/// of keys written once (FIFO alone would evict them every lap).
#[test]
fn frequently_read_keys_survive_eviction() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    let value = vec![1u8; 200];
    let hot: Vec<String> = (0..2000).map(|i| format!("hot:{i}")).collect();
    for k in &hot {
        h.set(k.as_bytes(), &value, None).unwrap();
    }
    let mut cold = 0u64;
    for _ in 0..30 {
        for _ in 0..10_000 {
            h.set(format!("cold:{cold}").as_bytes(), &value, None)
                .unwrap();
            cold += 1;
        }
        for _ in 0..8 {
            for k in &hot {
                h.get(k.as_bytes(), |_| ());
            }
        }
    }
    assert!(cache.stats().evictions > 100_000, "the churn must evict");
    let alive = hot
        .iter()
        .filter(|k| h.peek(k.as_bytes(), |_| ()).is_some())
        .count();
    assert!(
        alive >= hot.len() * 9 / 10,
        "only {alive} of {} hot keys survived",
        hot.len()
    );
}

/// FLUSHALL removes negative markers too (found by the fuzz target: they
/// survived, still counted, because `delete` treats them as absent).
#[test]
fn flush_all_removes_negative_markers() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    let neg = PutOptions {
        negative: true,
        ..PutOptions::default()
    };
    h.update(&[b"gone"], |_, ch| ch.put_with(0, &[b""], neg))
        .unwrap()
        .unwrap();
    h.set(b"k", b"v", None).unwrap();
    assert_eq!(cache.len(), 2);
    h.flush_all();
    assert_eq!(cache.len(), 0);
    assert_eq!(h.get_any(b"gone", |_| ()), None);
}

#[test]
fn value_head_is_the_values_first_bytes_at_every_alignment() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    let value: Vec<u8> = (0..64u8).map(|b| b.wrapping_mul(37)).collect();
    // Key lengths move the value's offset within its words.
    for klen in 1..=9 {
        for vlen in [0, 8, 32, 33, 34, 40, 64] {
            let key = vec![b'k'; klen];
            h.set(&key, &value[..vlen], None).unwrap();
            let head = h.peek(&key, |item| item.value_head::<33>()).unwrap();
            let want = (vlen >= 33).then(|| <[u8; 33]>::try_from(&value[..33]).unwrap());
            assert_eq!(head, want, "key {klen} bytes, value {vlen}");
            let five = h.peek(&key, |item| item.value_head::<5>()).unwrap();
            assert_eq!(
                five.map(|f| f.to_vec()),
                (vlen >= 5).then(|| value[..5].to_vec())
            );
        }
    }
    // A large item (in chunks) takes the piece-by-piece path.
    let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    h.set(b"big", &big, None).unwrap();
    let head = h.peek(b"big", |item| item.value_head::<33>()).unwrap();
    assert_eq!(head.map(|x| x.to_vec()), Some(big[..33].to_vec()));
}
