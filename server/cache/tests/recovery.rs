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

/// Big values have a sampled check (`item::value_check`): a torn one is
/// still never served after a crash. Three 256 KiB values are written and
/// the file is left as a crash leaves it; then one gets the prefix a torn
/// compaction move leaves (its first bytes replaced by later bytes of
/// itself) and one a stale 4 KiB page in its middle (a page written back
/// out of order). Both are dropped; the untouched one is served whole.
#[test]
fn a_torn_big_value_is_never_served_after_a_crash() {
    const LEN: usize = 256 << 10;
    let t = TempCache::new();
    let big = |i: usize| format!("big-value-{i}").into_bytes();
    {
        let (cache, _) = t.open(64 << 20);
        let mut h = cache.handle().unwrap();
        for i in 0..3 {
            h.set(&big(i), &checked_value::make(&big(i), 1, LEN), None)
                .unwrap();
        }
        // Not closed: the file is left as a crash leaves it.
    }
    let path = t.config(64 << 20).path;
    let mut image = std::fs::read(&path).unwrap();
    let value_at = |image: &[u8], k: &[u8]| {
        let at = image.windows(k.len()).position(|w| w == k).unwrap() + k.len();
        assert_eq!(image[at..at + LEN], checked_value::make(k, 1, LEN));
        at
    };
    // A torn move: 1000 bytes at the front now hold the bytes 300 further on.
    let v = value_at(&image, &big(0));
    image.copy_within(v + 300..v + 1300, v);
    // A stale page: a whole file page inside the value holds other bytes.
    let v = value_at(&image, &big(1));
    let page = (v + 100_000).next_multiple_of(4096);
    image[page..page + 4096].fill(0xA5);
    std::fs::write(&path, &image).unwrap();

    let (cache, report) = t.open(64 << 20);
    assert!(!report.clean, "{report:?}");
    cache.audit().unwrap();
    let mut h = cache.handle().unwrap();
    let mut read = |k: &[u8]| {
        h.get(k, |item| {
            let mut v = Vec::new();
            item.write_value_to(&mut v);
            v
        })
    };
    assert_eq!(read(&big(0)), None, "a torn front is detected");
    assert_eq!(read(&big(1)), None, "a stale middle page is detected");
    assert_eq!(read(&big(2)), Some(checked_value::make(&big(2), 1, LEN)));
}
