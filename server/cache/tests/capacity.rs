//! Memory per item and warm restart at scale.

mod common;

use common::TempCache;

/// The memory target: with 16-byte keys and 32-byte values, a cache limited
/// to 64 MiB (the whole file, index included) holds at least 1,000,000 items
/// before its first eviction: at most ~16 bytes of overhead per item.
#[test]
fn sixty_four_mib_hold_a_million_small_items() {
    let t = TempCache::new();
    let (cache, _) = t.open(64 << 20);
    let mut h = cache.handle().unwrap();
    let value = [b'v'; 32];
    let mut n = 0u64;
    while cache.stats().evictions == 0 {
        for _ in 0..10_000 {
            let key = format!("key:{n:012}");
            assert_eq!(key.len(), 16);
            h.set(key.as_bytes(), &value, None).unwrap();
            n += 1;
        }
    }
    let stats = cache.stats();
    let held = cache.len();
    let per_item = (64u64 << 20) as f64 / held as f64;
    println!(
        "held {held} items of 48 bytes in 64 MiB before evicting: {per_item:.1} bytes/item all-in, {:.1} bytes overhead; level fill {:?}",
        per_item - 48.0,
        stats.level_fill
    );
    assert!(held >= 1_000_000, "held only {held} items");
    let (used, total) = stats
        .level_fill
        .iter()
        .fold((0, 0), |(u, t), (lu, lt)| (u + lu, t + lt));
    println!("index fill {:.1}%", 100.0 * used as f64 / total as f64);
}

#[test]
fn warm_restart_with_a_million_keys_is_immediate() {
    let t = TempCache::new();
    {
        let (cache, _) = t.open(256 << 20);
        let mut h = cache.handle().unwrap();
        for i in 0..1_000_000u32 {
            h.set(format!("key:{i}").as_bytes(), &i.to_le_bytes(), None)
                .unwrap();
        }
        assert_eq!(cache.len(), 1_000_000);
        drop(h);
        cache.close();
    }
    let (cache, report) = t.open(256 << 20);
    println!("warm attach of 1M keys: {:?}", report.elapsed);
    assert!(
        report.warm && report.clean && report.keys == 1_000_000,
        "{report:?}"
    );
    let mut h = cache.handle().unwrap();
    for i in (0..1_000_000u32).step_by(997) {
        let v = h.get(format!("key:{i}").as_bytes(), |item| {
            item.contiguous().map(|c| c.to_vec())
        });
        assert_eq!(v, Some(Some(i.to_le_bytes().to_vec())), "key:{i}");
    }
}

/// With items so small that the index fills before the value store, inserts
/// find a free slot until the index is at least 90% full.
#[test]
fn index_fills_past_ninety_percent_before_evicting() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    let mut n = 0u64;
    while cache.stats().evictions == 0 {
        for _ in 0..1000 {
            h.set(&n.to_le_bytes(), b"", None).unwrap();
            n += 1;
        }
    }
    let stats = cache.stats();
    let total: u64 = stats.level_fill.iter().map(|(_, t)| t).sum();
    let fill = cache.len() as f64 / total as f64;
    println!(
        "first index eviction at {:.1}% fill ({} keys, {total} slots)",
        100.0 * fill,
        cache.len()
    );
    assert!(fill >= 0.90, "index evicted at {:.1}% fill", 100.0 * fill);
}
