//! Edits of one page of a paged hash or set (`linear_hash::Table`): the
//! page is either built from entries (then every edit is checked against
//! a model) or arbitrary bytes (then an edit may only fail with
//! `Corrupt`). Lookups, replaces, inserts and removals in any order on
//! one loaded table reach the lazy page's every path: searched as stored,
//! appended to, one stored entry spliced out or replaced, decoded.
#![no_main]

use std::collections::BTreeMap;

use citadel_collections::linear_hash::{entry_bytes, Root, Table};
use citadel_collections::{Packed, PackedWriter};
use libfuzzer_sys::fuzz_target;

fn key(index: u8) -> Vec<u8> {
    format!("k{}", index % 64).into_bytes()
}

fn value(len: u8) -> Vec<u8> {
    // Up to 300 bytes: two-byte length prefixes too.
    vec![b'a' + len % 26; usize::from(len) * 300 / 255]
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let arity = 1 + usize::from(head & 1);
    let (page, ops, mut model) = if head & 2 == 0 {
        // Built: entries k0..kn, the model holds them.
        let n = head >> 2;
        let mut model = BTreeMap::new();
        let mut writer = PackedWriter::default();
        for i in 0..n {
            let (k, v) = (key(i), value(i.wrapping_mul(37)));
            writer.push(&k);
            if arity == 2 {
                writer.push(&v);
            }
            model.insert(k, v);
        }
        (writer.finish(), rest, Some(model))
    } else {
        // Arbitrary bytes: a length, then the page.
        let Some((&len, rest)) = rest.split_first() else {
            return;
        };
        let (page, ops) = rest.split_at(usize::from(len).min(rest.len()));
        (page.to_vec(), ops, None)
    };
    let mut root = Root::new(7);
    if let Ok(packed) = Packed::parse(&page) {
        root.count = (packed.len() / arity) as u64;
        root.bytes = packed
            .iter()
            .map_while(Result::ok)
            .map(|e| entry_bytes([e]))
            .sum();
    }
    let Ok(mut table) = Table::from_root(root, arity, [(0, Some(&page[..]))]) else {
        assert!(model.is_none(), "a built page loads");
        return;
    };
    for op in ops.chunks_exact(3) {
        let k = key(op[1]);
        let v = value(op[2]);
        let entry: Vec<&[u8]> = [&k[..], &v[..]][..arity].to_vec();
        match op[0] % 4 {
            0 => {
                let got = table.get(&k).map(|e| e.map(|e| e[arity - 1].to_vec()));
                if let Some(model) = &model {
                    let want = model
                        .get(&k)
                        .map(|v| if arity == 2 { v.clone() } else { k.clone() });
                    assert_eq!(got, Ok(want));
                }
            }
            1 | 2 => {
                let only_new = op[0] % 4 == 2;
                let added = table.put(&entry, only_new);
                if let Some(model) = &mut model {
                    let new = !model.contains_key(&k);
                    assert_eq!(added, Ok(new));
                    if new || !only_new {
                        model.insert(k, v);
                    }
                }
            }
            _ => {
                let removed = table.remove(&k).map(|e| e.is_some());
                if let Some(model) = &mut model {
                    assert_eq!(removed, Ok(model.remove(&k).is_some()));
                }
            }
        }
    }
    let Ok(out) = table.finish() else {
        assert!(model.is_none(), "a built page finishes");
        return;
    };
    let Some(model) = model else {
        return;
    };
    let stored = out.pages.into_iter().find(|(n, _)| *n == 0).map(|(_, p)| p);
    let elements: Vec<Vec<u8>> = match stored {
        // Not written: unchanged.
        None => Packed::parse(&page)
            .unwrap()
            .iter()
            .map(|e| e.unwrap().to_vec())
            .collect(),
        Some(None) => Vec::new(),
        Some(Some(bytes)) => Packed::parse(&bytes)
            .unwrap()
            .iter()
            .map(|e| e.unwrap().to_vec())
            .collect(),
    };
    let mut got: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for entry in elements.chunks_exact(arity) {
        let v = if arity == 2 {
            entry[1].clone()
        } else {
            model.get(&entry[0]).cloned().unwrap_or_default()
        };
        assert!(
            got.insert(entry[0].clone(), v).is_none(),
            "a key stored twice"
        );
    }
    assert_eq!(got, model);
});
