//! RANDOMKEY in a namespace that holds a tiny share of the keys (database
//! 1's few keys beside database 0's many): every answer is one of its
//! keys, each of them comes up, and keys added or deleted since the last
//! walk are seen at once.

mod common;

use std::collections::HashMap;

use citadel_cache::CacheHandle;
use common::TempCache;

const MEMORY: u64 = 64 << 20;

fn draws(h: &mut CacheHandle, n: usize) -> HashMap<Vec<u8>, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        let mut key = Vec::new();
        assert!(h.random_key(&mut key), "the namespace holds keys");
        *seen.entry(key).or_insert(0) += 1;
    }
    seen
}

fn keys(names: &[&str]) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
    keys.sort();
    keys
}

fn sorted(seen: &HashMap<Vec<u8>, usize>) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = seen.keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn a_sparse_namespace_answers_each_of_its_keys_and_follows_changes() {
    let t = TempCache::new();
    let (cache, _) = t.open(MEMORY);
    let mut h = cache.handle().unwrap();
    for i in 0..100_000 {
        h.set(format!("big{i}").as_bytes(), b"v", None).unwrap();
    }
    h.note_namespace_written(1);
    h.set_namespace(1);
    for key in ["a", "b", "c"] {
        h.set(key.as_bytes(), b"v", None).unwrap();
    }
    let seen = draws(&mut h, 300);
    assert_eq!(sorted(&seen), keys(&["a", "b", "c"]), "{seen:?}");
    assert!(seen.values().all(|&n| n >= 50), "about uniform: {seen:?}");

    // A key deleted since the walk is never answered; one added is.
    h.delete(b"b");
    h.set(b"d", b"v", None).unwrap();
    let seen = draws(&mut h, 300);
    assert_eq!(sorted(&seen), keys(&["a", "c", "d"]), "{seen:?}");

    // An expired key is not answered either.
    let now = citadel_cache::unix_millis();
    h.set_clock(now);
    h.set(b"e", b"v", Some(now + 50)).unwrap();
    h.set_clock(now + 100);
    let seen = draws(&mut h, 100);
    assert_eq!(sorted(&seen), keys(&["a", "c", "d"]), "{seen:?}");

    // Past the keys a walk keeps: every answer is still the namespace's.
    for i in 0..200 {
        h.set(format!("m{i}").as_bytes(), b"v", None).unwrap();
    }
    let seen = draws(&mut h, 100);
    assert!(
        seen.keys().all(|k| !k.starts_with(b"big")),
        "only namespace 1's keys: {seen:?}"
    );
    assert!(seen.len() > 10, "spread over the namespace: {}", seen.len());

    // Namespace 0 is dense: probes find its keys.
    h.set_namespace(0);
    let seen = draws(&mut h, 50);
    assert!(seen.keys().all(|k| k.starts_with(b"big")), "{seen:?}");
}
