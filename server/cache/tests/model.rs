//! Property test: random operation sequences against a simple model
//! (a HashMap with expiry) must agree on every read.

mod common;

use std::collections::HashMap;

use citadel_cache::Part;
use common::TempCache;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Set {
        key: u8,
        len: usize,
        ttl: Option<u64>,
    },
    Get {
        key: u8,
    },
    Delete {
        key: u8,
    },
    Append {
        key: u8,
        len: usize,
    },
    Rename {
        from: u8,
        to: u8,
    },
    Advance {
        ms: u64,
    },
    Persist {
        key: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), 0..300usize, prop::option::of(1..5000u64)).prop_map(|(key, len, ttl)| Op::Set { key: key % 64, len, ttl }),
        4 => any::<u8>().prop_map(|key| Op::Get { key: key % 64 }),
        1 => any::<u8>().prop_map(|key| Op::Delete { key: key % 64 }),
        1 => (any::<u8>(), 0..100usize).prop_map(|(key, len)| Op::Append { key: key % 64, len }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Rename { from: a % 64, to: b % 64 }),
        1 => (0..3000u64).prop_map(|ms| Op::Advance { ms }),
        1 => any::<u8>().prop_map(|key| Op::Persist { key: key % 64 }),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("key-{k}").into_bytes()
}

fn value(k: u8, len: usize, salt: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 31 + k as usize + salt) as u8)
        .collect()
}

type Model = HashMap<Vec<u8>, (Vec<u8>, Option<u64>)>;

fn live<'m>(model: &'m mut Model, k: &[u8], now: u64) -> Option<&'m (Vec<u8>, Option<u64>)> {
    if matches!(model.get(k), Some((_, Some(at))) if *at <= now) {
        model.remove(k);
    }
    model.get(k)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn cache_agrees_with_model(ops in prop::collection::vec(op(), 1..400)) {
        let t = TempCache::new();
        let (cache, _) = t.open(16 << 20);
        let mut h = cache.handle().unwrap();
        let mut now = 1_700_000_000_000u64;
        h.set_clock(now);
        let mut model: Model = HashMap::new();
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Set { key: k, len, ttl } => {
                    let v = value(k, len, step);
                    let at = ttl.map(|t| now + t);
                    h.set(&key(k), &v, at).unwrap();
                    model.insert(key(k), (v, at));
                }
                Op::Get { key: k } => {
                    let got = h.get(&key(k), |i| { let mut v = Vec::new(); i.write_value_to(&mut v); (v, i.expire_at()) });
                    prop_assert_eq!(got.as_ref(), live(&mut model, &key(k), now), "step {}", step);
                }
                Op::Delete { key: k } => {
                    let existed = live(&mut model, &key(k), now).is_some();
                    model.remove(&key(k));
                    prop_assert_eq!(h.delete(&key(k)), existed);
                }
                Op::Append { key: k, len } => {
                    let extra = value(k, len, step);
                    h.update(&[&key(k)], |items, ch| {
                        let mut parts: Vec<Part> = items[0].map(|i| i.chunks().map(Part::from).collect()).unwrap_or_default();
                        parts.push(Part::from(&extra));
                        ch.put(0, &parts, items[0].and_then(|i| i.expire_at()))
                    }).unwrap().unwrap();
                    let entry = live(&mut model, &key(k), now).cloned().unwrap_or((Vec::new(), None));
                    let mut v = entry.0;
                    v.extend_from_slice(&extra);
                    model.insert(key(k), (v, entry.1));
                }
                Op::Rename { from, to } => {
                    let moved = h.update(&[&key(from), &key(to)], |items, ch| {
                        let Some(src) = items[0] else { return false };
                        let parts: Vec<_> = src.chunks().collect();
                        ch.put(1, &parts, src.expire_at()).unwrap();
                        if from != to { ch.delete(0); }
                        true
                    }).unwrap();
                    let src = live(&mut model, &key(from), now).cloned();
                    prop_assert_eq!(moved, src.is_some());
                    if let Some(src) = src {
                        model.remove(&key(from));
                        model.insert(key(to), src);
                    }
                }
                Op::Advance { ms } => {
                    now += ms;
                    h.set_clock(now);
                }
                Op::Persist { key: k } => {
                    h.update(&[&key(k)], |items, ch| {
                        if let Some(i) = items[0] {
                            let parts: Vec<_> = i.chunks().collect();
                            ch.put(0, &parts, None).unwrap();
                        }
                    }).unwrap();
                    if let Some((v, _)) = live(&mut model, &key(k), now).cloned() {
                        model.insert(key(k), (v, None));
                    }
                }
            }
        }
        for k in 0..64u8 {
            let got = h.peek(&key(k), |i| { let mut v = Vec::new(); i.write_value_to(&mut v); (v, i.expire_at()) });
            prop_assert_eq!(got.as_ref(), live(&mut model, &key(k), now));
        }
        let live_keys = (0..64u8).filter(|k| live(&mut model, &key(*k), now).is_some()).count() as u64;
        prop_assert!(cache.len() >= live_keys, "len counts expired-unreclaimed keys too");
    }
}
