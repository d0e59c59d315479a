//! The cache engine's basic operations next to `HashMap<Vec<u8>, Vec<u8>>`,
//! each in a `measure_*` function of its own, so that callgrind counts the
//! instructions of one phase at a time (benches/cache-callgrind.sh runs it
//! with `--toggle-collect` and `--dump-after` on those functions). The work
//! per operation is that of benches/benches/cache.rs: 16-byte keys, 32-byte
//! values, keys visited in `scatter` order, a cache sized by `cache_for`.
//!
//! Usage: cache-ops [KEYS] [OPS]  (1,000,000 keys and 200,000 ops per phase
//! unless given). Prints each phase's name before it runs.

use std::collections::HashMap;
use std::hint::black_box;

use citadel_benches::{cache_for, keys, scatter};
use citadel_cache::CacheHandle;

const VALUE: [u8; 32] = [b'v'; 32];

/// The keys the phases use: `present` ones were stored by the fill,
/// `absent` ones never were (until set-new stores the first `ops`).
struct Keys {
    present: Vec<[u8; 16]>,
    absent: Vec<[u8; 16]>,
}

#[inline(never)]
fn measure_citadel_get_hit(h: &mut CacheHandle, k: &Keys, ops: u64) -> usize {
    let n = k.present.len();
    let mut sum = 0;
    for i in 0..ops {
        sum += black_box(h.get(&k.present[scatter(i, n)], |item| item.value_len())).unwrap_or(0);
    }
    sum
}

#[inline(never)]
fn measure_hashmap_get_hit(map: &HashMap<Vec<u8>, Vec<u8>>, k: &Keys, ops: u64) -> usize {
    let n = k.present.len();
    let mut sum = 0;
    for i in 0..ops {
        sum += black_box(map.get(&k.present[scatter(i, n)][..]).map(|v| v.len())).unwrap_or(0);
    }
    sum
}

#[inline(never)]
fn measure_citadel_get_miss(h: &mut CacheHandle, k: &Keys, ops: u64) -> usize {
    let n = k.absent.len();
    let mut sum = 0;
    for i in 0..ops {
        sum += black_box(h.get(&k.absent[scatter(i, n)], |item| item.value_len())).unwrap_or(0);
    }
    sum
}

#[inline(never)]
fn measure_hashmap_get_miss(map: &HashMap<Vec<u8>, Vec<u8>>, k: &Keys, ops: u64) -> usize {
    let n = k.absent.len();
    let mut sum = 0;
    for i in 0..ops {
        sum += black_box(map.get(&k.absent[scatter(i, n)][..]).map(|v| v.len())).unwrap_or(0);
    }
    sum
}

#[inline(never)]
fn measure_citadel_set_overwrite(h: &mut CacheHandle, k: &Keys, ops: u64) {
    let n = k.present.len();
    for i in 0..ops {
        h.set(&k.present[scatter(i, n)], &VALUE, None)
            .expect("set fits the cache");
    }
}

#[inline(never)]
fn measure_hashmap_set_overwrite(map: &mut HashMap<Vec<u8>, Vec<u8>>, k: &Keys, ops: u64) {
    let n = k.present.len();
    for i in 0..ops {
        black_box(map.insert(k.present[scatter(i, n)].to_vec(), VALUE.to_vec()));
    }
}

#[inline(never)]
fn measure_citadel_set_new(h: &mut CacheHandle, k: &Keys, ops: u64) {
    for key in &k.absent[..ops as usize] {
        h.set(key, &VALUE, None).expect("set fits the cache");
    }
}

#[inline(never)]
fn measure_hashmap_set_new(map: &mut HashMap<Vec<u8>, Vec<u8>>, k: &Keys, ops: u64) {
    for key in &k.absent[..ops as usize] {
        black_box(map.insert(key.to_vec(), VALUE.to_vec()));
    }
}

/// A read-modify-write of one present key through `update` (the path of
/// a collection write: LPUSH, HSET, SADD ...), writing `value`.
#[inline(never)]
fn measure_citadel_update(h: &mut CacheHandle, k: &Keys, ops: u64, value: &[u8]) -> usize {
    let n = k.present.len();
    (0..ops)
        .map(|i| rewrite(h, &k.present[scatter(i, n)], value))
        .sum()
}

/// An `update` whose closure only reads (SADD of a member already there).
#[inline(never)]
fn measure_citadel_update_read(h: &mut CacheHandle, k: &Keys, ops: u64) -> usize {
    let n = k.present.len();
    (0..ops)
        .map(|i| read_through_update(h, &k.present[scatter(i, n)]))
        .sum()
}

// The closures live outside the `measure_*` functions: callgrind's
// patterns would match `measure_...::{{closure}}` and toggle or dump there.
// Not inlined, so the harness's inlining does not move with the engine's.
#[inline(never)]
fn rewrite(h: &mut CacheHandle, key: &[u8], value: &[u8]) -> usize {
    h.update(&[key], |items, changes| {
        let len = items[0].as_ref().map_or(0, |item| item.value_len());
        changes.put(0, &[value], None).map(|()| len)
    })
    .expect("update fits the cache")
    .expect("put fits the cache")
}

#[inline(never)]
fn read_through_update(h: &mut CacheHandle, key: &[u8]) -> usize {
    h.update(&[key], |items, _| {
        items[0].as_ref().map_or(0, |item| item.value_len())
    })
    .expect("a read-only update")
}

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .map(|s| s.replace([',', '_'], "").parse().expect("a number"))
        .unwrap_or(default)
}

fn main() {
    let n = arg(1, 1_000_000) as usize;
    let ops = arg(2, 200_000).min(n as u64);
    let mut all = keys(n * 2);
    let absent = all.split_off(n);
    let k = Keys {
        present: all,
        absent,
    };
    let (cache, _dir) = cache_for(n);
    let mut h = cache.handle().expect("a writer slot");
    let mut map: HashMap<Vec<u8>, Vec<u8>> = HashMap::with_capacity(n);
    for key in &k.present {
        h.set(key, &VALUE, None).expect("the fill fits the cache");
        map.insert(key.to_vec(), VALUE.to_vec());
    }
    println!("keys {n} ops {ops}");
    // Reads first (on the state the fill left), then overwrites, then new
    // keys. Each measurement is announced first: the script names the
    // callgrind dumps (one per measure_ call, in order) by these lines, as
    // identical functions may be merged under one symbol.
    let phase = |name: &str| println!("phase {name}");
    phase("citadel_get_hit");
    let hits = measure_citadel_get_hit(&mut h, &k, ops);
    phase("hashmap_get_hit");
    assert_eq!(hits, measure_hashmap_get_hit(&map, &k, ops));
    phase("citadel_get_miss");
    let misses = measure_citadel_get_miss(&mut h, &k, ops);
    phase("hashmap_get_miss");
    assert_eq!(misses, measure_hashmap_get_miss(&map, &k, ops));
    phase("citadel_set_overwrite");
    measure_citadel_set_overwrite(&mut h, &k, ops);
    phase("hashmap_set_overwrite");
    measure_hashmap_set_overwrite(&mut map, &k, ops);
    phase("citadel_set_new");
    measure_citadel_set_new(&mut h, &k, ops);
    phase("hashmap_set_new");
    measure_hashmap_set_new(&mut map, &k, ops);
    // Eviction (the cache is sized as an operator would) may drop keys.
    let stats = cache.stats();
    println!(
        "citadel keys {} (evictions {}), hashmap keys {}",
        stats.keys,
        stats.evictions,
        map.len()
    );
    // One-key updates run in a cache of their own, with room for every
    // write, so no phase measures eviction (which the HashMap never does).
    let m = n.min(100_000);
    let k = Keys {
        present: k.present[..m].to_vec(),
        absent: Vec::new(),
    };
    let (cache, _dir) = cache_for(m * 8);
    let mut h = cache.handle().expect("a writer slot");
    for key in &k.present {
        h.set(key, &VALUE, None).expect("the fill fits the cache");
    }
    phase("citadel_update");
    black_box(measure_citadel_update(&mut h, &k, ops, &VALUE));
    phase("citadel_update_medium");
    black_box(measure_citadel_update(&mut h, &k, ops / 10, &[b'm'; 400]));
    phase("citadel_update_read");
    black_box(measure_citadel_update_read(&mut h, &k, ops));
    println!("update cache: evictions {}", cache.stats().evictions);
}
