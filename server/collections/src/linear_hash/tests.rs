//! The paged table against a model: random puts and removes, each planned
//! from the root alone as a command plans it, on a map of stored pages.

use std::collections::{BTreeMap, HashMap};

use super::scan::{entries_from, pages_from, position};
use super::*;
use crate::packed::Packed;
use crate::paged::flatten;

struct Store {
    root: Vec<u8>,
    pages: BTreeMap<u64, Vec<u8>>,
}

impl Store {
    fn new() -> Store {
        Store {
            root: Root::new(7).encode(),
            pages: BTreeMap::new(),
        }
    }

    fn table(&self, planned: &[u64]) -> Table<'_> {
        let pages = planned
            .iter()
            .map(|p| (*p, self.pages.get(p).map(Vec::as_slice)));
        Table::load(&self.root, 2, pages).unwrap()
    }

    fn apply(&mut self, out: Output) {
        if !out.changed {
            return;
        }
        for (n, page) in out.pages {
            match page {
                Some(bytes) => self.pages.insert(n, bytes),
                None => self.pages.remove(&n),
            };
        }
        self.root = out.root.unwrap_or_else(|| Root::new(7).encode());
    }

    fn check(&self, model: &HashMap<Vec<u8>, Vec<u8>>) {
        let root = Root::parse(&self.root).unwrap();
        assert_eq!(root.count, model.len() as u64);
        let mut bytes = 0;
        let mut seen = 0;
        for (n, page) in &self.pages {
            assert!(
                root.header.pages.contains(n),
                "page {n} outside the root's range"
            );
            let elements = Packed::parse(page).unwrap().to_vec().unwrap();
            assert!(!elements.is_empty(), "an empty page is stored");
            bytes += entry_bytes(elements.iter().copied());
            for pair in elements.chunks(2) {
                assert_eq!(root.page_of_key(pair[0]), *n, "entry on the wrong page");
                assert_eq!(model.get(pair[0]).map(Vec::as_slice), Some(pair[1]));
                seen += 1;
            }
        }
        assert_eq!((root.bytes, seen), (bytes, model.len()));
        let load = root.count / root.page_count();
        assert!(load <= 2 * SPLIT_ENTRIES, "pages overfull: {load}");
    }
}

fn rng(mut s: u64) -> impl FnMut() -> u64 {
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

#[test]
fn random_edits_match_a_hash_map_through_growth_and_shrinking() {
    let mut next = rng(0x1234_5678_9abc_def1);
    let mut store = Store::new();
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for round in 0..40_000u64 {
        // Grow for the first half, then mostly shrink.
        let grow = if round < 20_000 { 4 } else { 1 };
        let key = format!("k{}", next() % 6_000).into_bytes();
        let root = Root::parse(&store.root).unwrap();
        if next() % 5 < grow {
            let value = format!("v{}", next() % 1000).into_bytes();
            let cost = entry_bytes([&key[..], &value[..]]);
            let planned = root.pages_for([&key[..]], 1, cost, 0);
            let mut table = store.table(&planned);
            let added = table.put(&[&key[..], &value[..]], false).unwrap();
            assert_eq!(added, model.insert(key, value).is_none());
            let out = table.finish().unwrap();
            store.apply(out);
        } else {
            let planned = root.pages_for([&key[..]], 0, 0, 1);
            let mut table = store.table(&planned);
            let removed = table.remove(&key).unwrap().map(|e| e[1].to_vec());
            assert_eq!(removed, model.remove(&key));
            let out = table.finish().unwrap();
            store.apply(out);
        }
        if round % 1000 == 0 {
            store.check(&model);
        }
    }
    store.check(&model);
    let root = Root::parse(&store.root).unwrap();
    assert!(
        root.page_count() <= root.count / MERGE_ENTRIES + 1,
        "merged back"
    );
    assert!(root.count < 3_000, "the model shrank: {}", root.count);
}

#[test]
fn built_values_hold_every_entry_and_flatten_back() {
    let mut writer = PackedWriter::default();
    for i in 0..5_000 {
        writer.push(format!("field{i}").as_bytes());
        writer.push(format!("{i}").as_bytes());
    }
    let packed = writer.finish();
    let built = build(Packed::parse(&packed).unwrap(), 2, 9).unwrap();
    let root = Root::parse(&built.root).unwrap();
    assert!(root.page_count() > 40 && !root.needs_split());
    assert_eq!(root.count, 5_000);
    let store = Store {
        root: built.root.clone(),
        pages: built.pages.iter().cloned().collect(),
    };
    let model = (0..5_000)
        .map(|i| {
            (
                format!("field{i}").into_bytes(),
                format!("{i}").into_bytes(),
            )
        })
        .collect();
    store.check(&model);
    let pages: Vec<Packed<'_>> = built
        .pages
        .iter()
        .map(|(_, p)| Packed::parse(p).unwrap())
        .collect();
    assert_eq!(
        Packed::parse(&flatten(pages).unwrap()).unwrap().len(),
        10_000
    );
}

#[test]
fn a_scan_returns_every_stable_entry_once_while_pages_split_and_merge() {
    let mut next = rng(99);
    let mut store = Store::new();
    let put = |store: &mut Store, key: Vec<u8>| {
        let root = Root::parse(&store.root).unwrap();
        let planned = root.pages_for([&key[..]], 1, 20, 0);
        let mut table = store.table(&planned);
        table.put(&[&key[..], b"v"], false).unwrap();
        let out = table.finish().unwrap();
        store.apply(out);
    };
    let stable: Vec<Vec<u8>> = (0..3_000).map(|i| format!("s{i}").into_bytes()).collect();
    stable.iter().for_each(|k| put(&mut store, k.clone()));
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut cursor = 0;
    let mut round = 0;
    loop {
        // Churn between calls: grow hard, then shrink, so pages split and merge.
        for _ in 0..200 {
            let key = format!("x{}", next() % 20_000).into_bytes();
            let root = Root::parse(&store.root).unwrap();
            if round < 10 {
                put(&mut store, key);
            } else {
                let planned = root.pages_for([&key[..]], 0, 0, 1);
                let mut table = store.table(&planned);
                table.remove(&key).unwrap();
                let out = table.finish().unwrap();
                store.apply(out);
            }
        }
        let root = Root::parse(&store.root).unwrap();
        let visit = pages_from(&root, cursor, 3);
        let planned: Vec<u64> = visit.iter().map(|(p, _)| *p).collect();
        let table = store.table(&planned);
        for (page, entries) in table.pages().unwrap() {
            let first = page == planned[0];
            for e in entries {
                if !first || position(&e[0]) >= cursor {
                    *seen.entry(e[0].to_vec()).or_default() += 1;
                }
            }
        }
        cursor = visit.last().unwrap().1;
        round += 1;
        if cursor == 0 {
            break;
        }
    }
    for k in &stable {
        assert_eq!(seen.get(k), Some(&1), "{}", String::from_utf8_lossy(k));
    }
    let whole: Vec<(u64, u32)> = (0..50u32).map(|i| (i as u64 * 3 % 7, i)).collect();
    let (first, next) = entries_from(whole, 2, 5);
    assert!(first.len() >= 5 && next > 2);
}

#[test]
fn batched_inserts_then_random_pops_keep_every_entry() {
    let mut next = rng(5);
    let mut store = Store::new();
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for batch in 0..40u64 {
        let keys: Vec<Vec<u8>> = (batch * 1000..(batch + 1) * 1000)
            .map(|i| format!("element:{i:012}").into_bytes())
            .collect();
        let root = Root::parse(&store.root).unwrap();
        let cost: u64 = keys.iter().map(|k| entry_bytes([&k[..], b"v"])).sum();
        let planned = root.pages_for(keys.iter().map(Vec::as_slice), 1000, cost, 0);
        let mut table = store.table(&planned);
        for k in &keys {
            table.put(&[k, b"v"], false).unwrap();
            model.insert(k.clone(), b"v".to_vec());
        }
        let out = table.finish().unwrap();
        store.apply(out);
        store.check(&model);
    }
    while !model.is_empty() {
        let root = Root::parse(&store.root).unwrap();
        let pages = root.page_count();
        let start = next() % pages;
        let mut planned: Vec<u64> = (0..3.min(pages)).map(|i| (start + i) % pages).collect();
        planned.extend(root.pages_for(std::iter::empty(), 0, 0, 1));
        planned.sort_unstable();
        planned.dedup();
        let mut table = store.table(&planned);
        let victim = table
            .pages()
            .unwrap()
            .into_iter()
            .flat_map(|(_, es)| es)
            .next()
            .map(|e| e[0].to_vec());
        if let Some(victim) = victim {
            assert!(table.remove(&victim).unwrap().is_some());
            model.remove(&victim);
        }
        let out = table.finish().unwrap();
        store.apply(out);
        if model.len() % 997 == 0 {
            store.check(&model);
        }
    }
    store.check(&model);
}

#[test]
fn several_edits_in_one_table_match_a_hash_map() {
    // A command that touches a few keys (HSET of several fields, HDEL,
    // HGET between them in a script), each key several times: a page's
    // entry replaced or removed in place, then found, appended to or
    // edited again, with values long enough for two-byte lengths.
    let mut next = rng(77);
    let mut store = Store::new();
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for round in 0..6_000u64 {
        let n = 1 + next() % 4;
        let keys: Vec<Vec<u8>> = (0..n)
            .map(|_| format!("k{}", next() % 1_500).into_bytes())
            .collect();
        let root = Root::parse(&store.root).unwrap();
        let cost = keys
            .iter()
            .map(|k| entry_bytes([&k[..], &[0; 300][..]]))
            .sum();
        let planned = root.pages_for(keys.iter().map(Vec::as_slice), n, cost, n);
        let mut table = store.table(&planned);
        for _ in 0..1 + next() % 6 {
            let key = &keys[next() as usize % keys.len()];
            let got = table.get(key).unwrap().map(|e| e[1].to_vec());
            assert_eq!(got.as_ref(), model.get(key), "round {round}");
            match next() % 4 {
                0 => {
                    let removed = table.remove(key).unwrap().map(|e| e[1].to_vec());
                    assert_eq!(removed, model.remove(key), "round {round}");
                }
                _ => {
                    let value = vec![b'a' + (next() % 26) as u8; (next() % 200) as usize];
                    let added = table.put(&[key, &value], false).unwrap();
                    assert_eq!(added, model.insert(key.clone(), value).is_none());
                }
            }
        }
        let out = table.finish().unwrap();
        store.apply(out);
        if round % 500 == 0 {
            store.check(&model);
        }
    }
    store.check(&model);
}
