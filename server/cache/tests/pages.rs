//! Pages of big collections (`citadel_cache::owned`): hidden from the
//! keyspace, reclaimed when their root goes, evicted with their whole
//! collection, dropped as orphans.

mod common;

use std::ops::Range;

use citadel_cache::owned::{new_generation, page_key, parse_page_key, OWNER_MARK};
use citadel_cache::{CacheHandle, KeyChange, PutOptions, ValueKind};
use common::TempCache;

/// A root value: the stamp the engine reads, then some payload.
fn root_value(generation: u64, pages: Range<u64>, payload: usize) -> Vec<u8> {
    let mut v = vec![OWNER_MARK];
    for word in [generation, 1, pages.start, pages.end] {
        v.extend_from_slice(&word.to_le_bytes());
    }
    v.resize(v.len() + payload, b'r');
    v
}

fn page_keys(owner: &[u8], generation: u64, pages: Range<u64>) -> Vec<Vec<u8>> {
    pages
        .map(|page| {
            let mut key = Vec::new();
            page_key(owner, generation, page, &mut key);
            key
        })
        .collect()
}

/// A collection written: owner key, generation, page range.
type Collection = (Vec<u8>, u64, Range<u64>);

const HASH: PutOptions = PutOptions {
    expire_at: None,
    soft_expire_at: None,
    negative: false,
    kind: ValueKind::Hash,
    editable: false,
    raw_string: false,
};
/// Writes a root and its pages in one update, as the collection commands do.
fn write_collection(
    h: &mut CacheHandle,
    owner: &[u8],
    generation: u64,
    pages: Range<u64>,
    page_len: usize,
    root_opts: PutOptions,
) {
    let keys = page_keys(owner, generation, pages.clone());
    let mut all: Vec<&[u8]> = vec![owner];
    all.extend(keys.iter().map(Vec::as_slice));
    let root = root_value(generation, pages, 64);
    let page = vec![b'p'; page_len];
    h.update(&all, |_, ch| {
        ch.put_with(0, &[root.as_slice()], root_opts)?;
        for i in 1..all.len() {
            ch.put_with(i, &[page.as_slice()], PutOptions::PAGE)?;
        }
        Ok::<_, citadel_cache::WriteError>(())
    })
    .unwrap()
    .unwrap();
}

fn present(h: &mut CacheHandle, key: &[u8]) -> bool {
    h.peek(key, |_| ()).is_some()
}

fn pages_present(h: &mut CacheHandle, owner: &[u8], generation: u64, pages: Range<u64>) -> usize {
    page_keys(owner, generation, pages)
        .iter()
        .filter(|k| present(h, k))
        .count()
}

/// The generation of the root under `owner`, if one is there.
fn root_generation(h: &mut CacheHandle, owner: &[u8]) -> Option<u64> {
    h.peek(owner, |item| {
        let mut head = [0u8; 9];
        item.value_range(0, 9).next().unwrap().copy_to(&mut head);
        u64::from_le_bytes(head[1..9].try_into().unwrap())
    })
}

/// Asserts that every collection whose root is still there has all its
/// pages (and, with `gone_reclaimed`, that the others have none left);
/// returns how many are still there.
fn assert_whole(h: &mut CacheHandle, collections: &[Collection], gone_reclaimed: bool) -> usize {
    let mut live = 0;
    for (owner, g, pages) in collections {
        let n = pages_present(h, owner, *g, pages.clone()) as u64;
        let name = String::from_utf8_lossy(owner);
        if root_generation(h, owner) == Some(*g) {
            live += 1;
            assert_eq!(n, pages.end - pages.start, "{name:?} lost pages");
        } else if gone_reclaimed {
            assert_eq!(n, 0, "{name:?} left pages behind");
        }
    }
    live
}

fn drain_reclaim(h: &mut CacheHandle) {
    while h.reclaim_pending() {
        h.reclaim_step(3);
    }
}

fn scan_all(h: &mut CacheHandle) -> Vec<Vec<u8>> {
    let (mut cursor, mut keys) = (0, Vec::new());
    loop {
        cursor = h.scan(cursor, 10, |item| keys.push(item.key().to_vec()));
        if cursor == 0 {
            return keys;
        }
    }
}

#[test]
fn pages_are_not_keys() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    h.record_changes(true);
    for c in 0..3u8 {
        write_collection(&mut h, &[b'c', c], new_generation(), 0..5, 100, HASH);
    }
    for i in 0..4u8 {
        h.set(&[b's', i], b"v", None).unwrap();
    }
    assert_eq!(cache.len(), 7, "roots and strings only");
    let mut keys = scan_all(&mut h);
    keys.sort();
    assert_eq!(keys.len(), 7);
    assert!(keys.iter().all(|k| parse_page_key(k).is_none()));
    let mut key = Vec::new();
    for _ in 0..200 {
        key.clear();
        assert!(h.random_key(&mut key));
        assert!(parse_page_key(&key).is_none(), "RANDOMKEY gave a page");
    }
    let mut logged = Vec::new();
    h.drain_changes(|key, change, _| logged.push((key.to_vec(), change)));
    assert_eq!(logged.len(), 7, "{logged:?}");
    assert!(logged.iter().all(|(k, _)| parse_page_key(k).is_none()));
    cache.audit().unwrap();
}

#[test]
fn a_dropped_root_reclaims_its_pages() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    h.record_changes(true);

    // DEL.
    let g = new_generation();
    write_collection(&mut h, b"del", g, 0..10, 100, HASH);
    assert!(h.delete(b"del"));
    assert!(h.reclaim_pending());
    assert_eq!(cache.stats().reclaim_pending, 10);
    drain_reclaim(&mut h);
    assert_eq!(pages_present(&mut h, b"del", g, 0..10), 0);
    assert_eq!(cache.stats().reclaimed_pages, 10);
    assert_eq!(cache.stats().reclaim_pending, 0);

    // SET of a string over a root.
    let g = new_generation();
    write_collection(&mut h, b"set", g, 2..6, 100, HASH);
    h.set(b"set", b"plain", None).unwrap();
    drain_reclaim(&mut h);
    assert_eq!(pages_present(&mut h, b"set", g, 2..6), 0);

    // A rewrite with the same generation keeps the pages; a new
    // generation drops the old ones.
    let g = new_generation();
    write_collection(&mut h, b"keep", g, 0..4, 100, HASH);
    let rewritten = root_value(g, 0..4, 10);
    h.update(&[b"keep"], |_, ch| {
        ch.put_with(0, &[rewritten.as_slice()], HASH)
    })
    .unwrap()
    .unwrap();
    assert!(!h.reclaim_pending());
    assert_eq!(pages_present(&mut h, b"keep", g, 0..4), 4);
    let g2 = new_generation();
    write_collection(&mut h, b"keep", g2, 0..2, 100, HASH);
    drain_reclaim(&mut h);
    assert_eq!(pages_present(&mut h, b"keep", g, 0..4), 0);
    assert_eq!(pages_present(&mut h, b"keep", g2, 0..2), 2);

    // Lazy expiry of a root with a TTL.
    let g = new_generation();
    let now = h.now_ms();
    let ttl = PutOptions {
        expire_at: Some(now + 1000),
        ..HASH
    };
    write_collection(&mut h, b"ttl", g, 0..3, 100, ttl);
    let g2 = new_generation();
    write_collection(&mut h, b"ttl2", g2, 0..3, 100, ttl);
    h.set_clock(now + 2000);
    assert!(!present(&mut h, b"ttl"));
    // ... and of one a write finds expired.
    h.update(&[b"ttl2"], |items, _| assert!(items[0].is_none()))
        .unwrap();
    drain_reclaim(&mut h);
    h.set_clock(now);
    assert_eq!(pages_present(&mut h, b"ttl", g, 0..3), 0);
    assert_eq!(pages_present(&mut h, b"ttl2", g2, 0..3), 0);

    // A transaction deleting a root.
    let g = new_generation();
    write_collection(&mut h, b"txn", g, 0..3, 100, HASH);
    h.txn_begin(&[b"txn"]);
    h.update(&[b"txn"], |_, ch| ch.delete(0)).unwrap();
    assert_eq!(h.txn_commit(), Ok(true));
    drain_reclaim(&mut h);
    assert_eq!(pages_present(&mut h, b"txn", g, 0..3), 0);

    // Reclaim never deletes a live page, nor anything but pages.
    let g = new_generation();
    write_collection(&mut h, b"live", g, 0..3, 100, HASH);
    h.reclaim_pages(b"live", g, 0..3);
    drain_reclaim(&mut h);
    assert_eq!(pages_present(&mut h, b"live", g, 0..3), 3);

    let mut logged = Vec::new();
    h.drain_changes(|key, change, _| logged.push((key.to_vec(), change)));
    assert!(logged.iter().all(|(k, _)| parse_page_key(k).is_none()));
    assert!(logged.contains(&(b"del".to_vec(), KeyChange::Deleted)));
    assert_eq!(cache.len(), 3, "set, keep, live");
    cache.audit().unwrap();
}

/// Collections (root + pages written in one update) churned with plain
/// keys through a small cache: every root still present has all its pages,
/// orphans go, and the key count stays exact.
#[test]
fn eviction_never_tears_a_collection() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    let mut collections: Vec<Collection> = Vec::new();
    // Orphans from the start: pages whose root never existed.
    let orphan_gen = new_generation();
    for (i, key) in page_keys(b"nobody", orphan_gen, 0..50)
        .into_iter()
        .enumerate()
    {
        h.update(&[&key], |_, ch| {
            ch.put_with(0, &[&[i as u8; 2000][..]], PutOptions::PAGE)
        })
        .unwrap()
        .unwrap();
    }
    for round in 0..1500u32 {
        let owner = format!("coll-{round}").into_bytes();
        let g = new_generation();
        let pages = 0..(round % 12 + 1) as u64;
        write_collection(&mut h, &owner, g, pages.clone(), 3000, HASH);
        collections.push((owner, g, pages));
        for j in 0..20 {
            let k = format!("plain-{round}-{j}").into_bytes();
            h.set(&k, &[b'x'; 1500], None).unwrap();
        }
        // Some collections are used (their roots earn frequency bits).
        for (owner, _, _) in collections.iter().rev().take(40).step_by(3) {
            h.touch_key(owner);
        }
        h.reclaim_step(16);
    }
    drain_reclaim(&mut h);
    let live = assert_whole(&mut h, &collections, true);
    assert!(
        live > 0 && live < collections.len(),
        "{live} collections live"
    );
    assert_eq!(pages_present(&mut h, b"nobody", orphan_gen, 0..50), 0);
    let stats = cache.stats();
    assert!(
        stats.evictions > 0 && stats.reclaimed_pages > 50,
        "{stats:?}"
    );
    cache.audit().unwrap();
    assert!(scan_all(&mut h).iter().all(|k| parse_page_key(k).is_none()));
}

/// Recovery after a crash counts keys, not pages.
#[test]
fn recovery_counts_no_pages() {
    let t = TempCache::new();
    {
        let (cache, _) = t.open(16 << 20);
        let mut h = cache.handle().unwrap();
        write_collection(&mut h, b"big", new_generation(), 0..8, 500, HASH);
        h.set(b"small", b"v", None).unwrap();
        assert_eq!(cache.len(), 2);
        // Not closed: attached again as after a crash.
    }
    let (cache, report) = t.open(16 << 20);
    assert!(!report.clean);
    assert_eq!((report.keys, cache.len()), (2, 2));
    cache.audit().unwrap();
}

/// The same with tiny items, so the index fills before the value log:
/// new keys take the slots of old ones (index-slot eviction), and a live
/// page's slot is only taken after its root was evicted.
#[test]
fn index_slot_eviction_never_tears_a_collection() {
    let t = TempCache::new();
    let (cache, _) = t.open(8 << 20);
    let mut h = cache.handle().unwrap();
    let mut collections: Vec<Collection> = Vec::new();
    for round in 0..6000u32 {
        let owner = format!("c{round}").into_bytes();
        let g = new_generation();
        let pages = 0..(round % 30 + 1) as u64;
        write_collection(&mut h, &owner, g, pages.clone(), 1, HASH);
        collections.push((owner, g, pages));
        for j in 0..10 {
            h.set(format!("{round}.{j}").as_bytes(), b"", None).unwrap();
        }
        h.reclaim_step(64);
    }
    drain_reclaim(&mut h);
    let live = assert_whole(&mut h, &collections, false);
    assert!(
        live > 0 && live < collections.len(),
        "{live} collections live"
    );
    let stats = cache.stats();
    assert!(stats.evictions > 0, "{stats:?}");
    cache.audit().unwrap();
}

/// Several threads write, read and delete collections and churn plain
/// keys through a small cache at once: every surviving root has all its
/// pages, and the key count stays exact.
#[test]
fn concurrent_churn_never_tears_a_collection() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let threads = 3u32;
    let written: Vec<Vec<Collection>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let cache = cache.clone();
                scope.spawn(move || {
                    let mut h = cache.handle().unwrap();
                    let mut mine = Vec::new();
                    for round in 0..500u32 {
                        // Shared names: threads overwrite each other's roots.
                        let owner = format!("coll-{}", (round * 7 + t) % 300).into_bytes();
                        let g = new_generation();
                        let pages = 0..(round % 8 + 1) as u64;
                        write_collection(&mut h, &owner, g, pages.clone(), 2500, HASH);
                        mine.push((owner.clone(), g, pages));
                        for j in 0..8 {
                            let k = format!("plain-{t}-{round}-{j}").into_bytes();
                            h.set(&k, &[b'x'; 1500], None).unwrap();
                        }
                        if round % 5 == 0 {
                            h.delete(format!("coll-{}", round % 300).as_bytes());
                        }
                        h.get(&owner, |_| ());
                        h.reclaim_step(16);
                    }
                    while h.reclaim_pending() {
                        h.reclaim_step(64);
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut h = cache.handle().unwrap();
    let written: Vec<Collection> = written.into_iter().flatten().collect();
    let live = assert_whole(&mut h, &written, false);
    assert!(live > 0, "no collection survived");
    cache.audit().unwrap();
}

/// A collection in use (its root touched, as its commands do) survives
/// laps of eviction whole while plain keys churn through the cache.
#[test]
fn a_used_collection_survives_eviction() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    let g = new_generation();
    write_collection(&mut h, b"hot", g, 0..20, 3000, HASH);
    for round in 0..4000u32 {
        let k = format!("plain-{round}").into_bytes();
        h.set(&k, &[b'x'; 10_000], None).unwrap();
        for _ in 0..8 {
            h.touch_key(b"hot");
        }
        h.reclaim_step(16);
    }
    let stats = cache.stats();
    assert!(stats.evictions > 2000, "{stats:?}");
    assert_eq!(root_generation(&mut h, b"hot"), Some(g));
    assert_eq!(pages_present(&mut h, b"hot", g, 0..20), 20);
}

/// `Changes::touch` counts an access as `touch_key` does, on every path:
/// a one-key update that writes nothing, one that rewrites the root (the
/// bump at the entry it publishes), and a multi-key update; an update
/// that does not touch counts none.
#[test]
fn an_update_that_touches_counts_an_access() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    let mut h = cache.handle().unwrap();
    let freq = |h: &mut CacheHandle, key: &[u8]| h.peek_with_freq(key, |_| ()).unwrap().1;
    let root = |g| root_value(g, 0..0, 64);
    for (i, key) in [&b"read"[..], b"write", b"multi", b"untouched"]
        .iter()
        .enumerate()
    {
        let g = new_generation();
        write_collection(&mut h, key, g, 0..0, 0, HASH);
        // Each touch bumps 1 in 4 or fewer times: 200 give bits surely.
        for _ in 0..200 {
            match i {
                0 => h.update(&[key], |_, ch| ch.touch(0)).unwrap(),
                1 => h
                    .update(&[key], |_, ch| {
                        ch.touch(0);
                        ch.put_with(0, &[root(g).as_slice()], HASH).unwrap();
                    })
                    .unwrap(),
                2 => h.update(&[b"other", key], |_, ch| ch.touch(1)).unwrap(),
                _ => h.update(&[key], |_, _| ()).unwrap(),
            }
        }
        let bits = freq(&mut h, key);
        assert_eq!(
            bits > 0,
            i < 3,
            "{}: frequency {bits}",
            String::from_utf8_lossy(key)
        );
    }
    // The rewritten root is still the collection's (same generation).
    assert!(root_generation(&mut h, b"write").is_some());
    cache.audit().unwrap();
}
