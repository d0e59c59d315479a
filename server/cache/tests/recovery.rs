//! Attaching files corrupted across a crash: regression cases found by the
//! `attach_corrupted` fuzz target (server/cache/fuzz), in the normal geometry.

mod common;

use citadel_cache::checked_value;
use common::TempCache;

fn key(i: usize) -> Vec<u8> {
    format!("key-{i:04}").into_bytes()
}

/// A corrupt item length made the eviction walk skip a live item; compaction
/// then moved kept items over it before the walk learned it had missed one,
/// and the live item's entry named garbage.
#[test]
fn compacting_a_corrupt_segment_never_overwrites_live_items() {
    let t = TempCache::new();
    {
        let (cache, _) = t.open(8 << 20);
        let mut h = cache.handle().unwrap();
        for i in 0..2000 {
            h.set(&key(i), &checked_value::make(&key(i), 1, 100), None)
                .unwrap();
        }
        // Reads earn frequency bits: compaction would keep these items.
        for _ in 0..20 {
            for i in 0..2000 {
                h.get(&key(i), |_| ());
            }
        }
        // Not closed: the file is left as a crash leaves it.
    }
    let path = t.config(8 << 20).path;
    let mut image = std::fs::read(&path).unwrap();
    let find = |k: &[u8]| image.windows(k.len()).position(|w| w == k).unwrap();
    let (at, next) = (find(&key(0)) - 5, find(&key(1)) - 5);
    assert_eq!(next, at + 113, "items 0 and 1 are adjacent");
    // Item 0 now claims 226 bytes (items 0 and 1): the walk skips item 1.
    image[at..at + 6].copy_from_slice(&[0, 0, 0xDC, 0x01, 0, 0]);
    std::fs::write(&path, &image).unwrap();

    let (cache, report) = t.open(8 << 20);
    assert!(!report.clean && report.dropped >= 1, "{report:?}");
    cache.audit().unwrap();
    let mut h = cache.handle().unwrap();
    // Churn until every segment was evicted or compacted at least once.
    for i in 0..3000 {
        let k = format!("new-{i}").into_bytes();
        h.set(&k, &checked_value::make(&k, 1, 4000), None).unwrap();
    }
    cache.audit().unwrap();
    for i in 1..2000 {
        let got = h.get(&key(i), |item| {
            let mut v = Vec::new();
            item.write_value_to(&mut v);
            v
        });
        if let Some(v) = got {
            assert_eq!(v, checked_value::make(&key(i), 1, 100), "key {i}");
        }
    }
}
