//! A live memory cap below the file's size (memory_cap.rs): writes evict to
//! stay under it, upkeep shrinks to a lowered one, noeviction refuses past
//! it, and a file reopened with a smaller maxmemory stays warm under one.

mod common;

use citadel_cache::{Cache, EvictionPolicy, OpenError, WriteError};
use common::TempCache;

const MIB: u64 = 1 << 20;

fn key(i: u64) -> Vec<u8> {
    format!("cap:{i:08}").into_bytes()
}

/// Writes 1 KiB values under keys `from..to`; the first error, if any.
fn write(cache: &std::sync::Arc<Cache>, from: u64, to: u64) -> Result<(), WriteError> {
    let mut h = cache.handle().unwrap();
    let value = [b'v'; 1024];
    (from..to).try_for_each(|i| h.set(&key(i), &value, None))
}

/// The index's bytes: what a cap of no segments allows.
fn index_bytes(cache: &Cache) -> u64 {
    let index = cache.set_memory_cap(0).expect("a cap");
    cache.set_memory_cap(u64::MAX);
    index
}

#[test]
fn writes_and_upkeep_keep_used_memory_under_a_lowered_cap() {
    let t = TempCache::new();
    let (cache, _) = t.open(48 * MIB);
    // Fill the file: 64 MiB of values into 48.
    write(&cache, 0, 64 * 1024).unwrap();
    let full = cache.stats().used_bytes;
    assert!(cache.stats().evictions > 0);
    let cap = index_bytes(&cache) + 12 * MIB;
    assert!(full > cap + 8 * MIB, "full {full}, cap {cap}");
    assert_eq!(cache.set_memory_cap(cap), Some(cap));
    assert_eq!(cache.stats().memory_cap, Some(cap));

    // Upkeep evicts down to the cap, a few segments a call.
    let mut h = cache.handle().unwrap();
    let mut calls = 0;
    while cache.stats().used_bytes > cap {
        h.maintain();
        calls += 1;
        assert!(calls < 100, "still {} over", cache.stats().used_bytes - cap);
    }
    assert!(calls > 1, "a lowered cap is reached over several calls");

    // New writes evict rather than grow past it, and stay readable.
    let mut keys = 64 * 1024;
    for _ in 0..8 {
        write(&cache, keys, keys + 4096).unwrap();
        keys += 4096;
        assert!(cache.stats().used_bytes <= cap);
    }
    let value = [b'v'; 1024];
    for i in keys - 2048..keys {
        assert_eq!(h.get(&key(i), |item| item.value_len()), Some(value.len()));
    }

    // Lifted, the file fills again.
    assert_eq!(cache.set_memory_cap(48 * MIB), None);
    write(&cache, keys, keys + 32 * 1024).unwrap();
    assert!(cache.stats().used_bytes > cap + 8 * MIB);
}

#[test]
fn noeviction_refuses_writes_past_the_cap_and_deletes_still_run() {
    let t = TempCache::new();
    let (cache, _) = t.open(32 * MIB);
    cache.set_eviction_policy(EvictionPolicy::NoEviction);
    write(&cache, 0, 4096).unwrap();
    let used = cache.stats().used_bytes;
    cache.set_memory_cap(used);
    let err = write(&cache, 4096, 64 * 1024).unwrap_err();
    assert!(matches!(err, WriteError::OutOfMemory { .. }), "{err:?}");
    assert!(cache.stats().used_bytes <= used);
    let mut h = cache.handle().unwrap();
    assert!(h.delete(&key(0)));
    // Nothing written before the cap was lost.
    for i in 1..4096 {
        assert!(h.get(&key(i), |_| ()).is_some(), "key {i}");
    }
    cache.set_memory_cap(u64::MAX);
    write(&cache, 4096, 8192).unwrap();
}

#[test]
fn a_smaller_maxmemory_reopens_the_file_warm_under_a_cap() {
    let t = TempCache::new();
    {
        let (cache, _) = t.open(32 * MIB);
        write(&cache, 0, 1000).unwrap();
        cache.close();
    }
    {
        let (cache, report) = t.open(24 * MIB);
        assert!(report.warm && report.clean);
        assert_eq!(cache.len(), 1000);
        let cap = cache.memory_cap().expect("capped");
        assert!(cap <= 24 * MIB && cap > 23 * MIB, "cap {cap}");
        write(&cache, 1000, 64 * 1024).unwrap();
        assert!(cache.stats().used_bytes <= cap);
        cache.close();
    }
    // A larger one cannot grow the mapped file.
    match Cache::open(t.config(64 * MIB)) {
        Err(OpenError::SizeMismatch {
            found, expected, ..
        }) => {
            assert_eq!((found, expected), (32 * MIB, 64 * MIB))
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    // The size it was made for: no cap.
    let (cache, _) = t.open(32 * MIB);
    assert_eq!(cache.memory_cap(), None);
}

/// Once every key a writer wrote is deleted, its next upkeep frees the
/// active segment holding them, so memory in use drops back instead of
/// waiting for the segment to fill; one with a live key stays.
#[test]
fn upkeep_frees_an_active_segment_whose_keys_all_went() {
    let t = TempCache::new();
    let (cache, _) = t.open(64 * MIB);
    let mut h = cache.handle().unwrap();
    let value = [b'v'; 1024];
    let baseline = cache.stats().used_bytes;
    for i in 0..100 {
        h.set(&key(i), &value, None).unwrap();
    }
    let written = cache.stats().used_bytes;
    assert!(written > baseline, "{written} > {baseline}");
    for i in 1..100 {
        assert!(h.delete(&key(i)));
    }
    h.maintain();
    assert_eq!(cache.stats().used_bytes, written, "key 0 still lives there");
    assert!(h.delete(&key(0)));
    h.maintain();
    assert_eq!(cache.stats().used_bytes, baseline);
    // The writer takes a new segment for its next write.
    h.set(&key(7), &value, None).unwrap();
    assert_eq!(cache.stats().used_bytes, written);
    let mut got = Vec::new();
    assert!(h
        .get(&key(7), |item| item.write_value_to(&mut got))
        .is_some());
    assert_eq!(got, value);
}
