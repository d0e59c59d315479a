//! The paged sorted set against an ordered model: random inserts and
//! removals through the tree and the member index, each operation run in
//! rounds that load the pages it asks for (as the commands do).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use super::paged::{build, flatten, ZRoot};
use super::tree::{decode_inner, decode_leaf, into_owned, Child, Key, Miss, Tree, LEAF_ENTRIES};
use super::Entry;
use crate::packed::Packed;

/// An entry as the model holds it.
type Owned = (f64, Vec<u8>);

/// The tree's form of a model entry.
fn key(entry: &Owned) -> Key<'_> {
    (entry.0, Cow::Borrowed(&entry.1))
}

/// A model entry to insert (a tree edited in rounds holds what it
/// inserts).
fn owned_key(entry: &Owned) -> Key<'static> {
    (entry.0, Cow::Owned(entry.1.clone()))
}

/// Pages as stored, and the root.
struct Store {
    root: Vec<u8>,
    pages: BTreeMap<u64, Vec<u8>>,
    /// Pages the last edit wrote.
    written: usize,
}

impl Store {
    /// The paged form of `entries` (in any order), built whole.
    fn built(entries: &[Owned], seed: u64) -> Store {
        let built = build(Packed::parse(&packed(entries)).unwrap(), seed).unwrap();
        Store {
            root: built.root,
            pages: built.pages.into_iter().collect(),
            written: 0,
        }
    }

    fn loaded(&self, pages: &BTreeSet<u64>) -> Vec<(u64, Option<Vec<u8>>)> {
        pages
            .iter()
            .map(|p| (*p, self.pages.get(p).cloned()))
            .collect()
    }

    /// Runs `op` on the tree until it has the pages it needs; stores what
    /// it changed.
    fn run<R>(&mut self, mut op: impl FnMut(&mut Tree<'_>) -> Result<R, Miss>) -> R {
        let root_bytes = self.root.clone();
        let root = ZRoot::parse(&root_bytes).expect("root");
        let mut planned: BTreeSet<u64> = Tree::free_head(&root.tree).into_iter().collect();
        loop {
            let loaded = self.loaded(&planned);
            let mut tree = root.tree(&loaded);
            match op(&mut tree) {
                Ok(r) => {
                    let (new_root, written) = root.after_tree_edit(tree);
                    self.written = written.len();
                    self.pages.extend(written);
                    self.root = new_root;
                    return r;
                }
                Err(Miss::Need(pages)) => {
                    assert!(pages.iter().any(|p| !planned.contains(p)), "no progress");
                    planned.extend(pages);
                }
                Err(Miss::Corrupt) => panic!("corrupt"),
            }
        }
    }
}

impl Store {
    /// Entries per leaf, walking down from the root's top.
    fn leaf_sizes(&self) -> Vec<usize> {
        let root = ZRoot::parse(&self.root).expect("root");
        let mut level: Vec<Child> = root.tree.top.clone();
        for _ in 1..root.tree.height {
            level = level
                .iter()
                .flat_map(|c| decode_inner(&self.pages[&c.page]).expect("inner"))
                .collect();
        }
        level
            .iter()
            .map(|c| decode_leaf(&self.pages[&c.page]).expect("leaf").len())
            .collect()
    }
}

/// `entries` as a packed sorted set (sorted first).
fn packed(entries: &[Owned]) -> Vec<u8> {
    let mut sorted: Vec<Entry<'_>> = entries.iter().map(|(s, m)| (*s, &m[..])).collect();
    sorted.sort_by(super::cmp);
    super::encode(&sorted)
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn tree_matches_an_ordered_model() {
    let seed: Vec<Owned> = (0..3000u64)
        .map(|i| ((i % 97) as f64, format!("m{i}").into_bytes()))
        .collect();
    let mut store = Store::built(&seed, 9);
    let mut model: BTreeMap<Vec<u8>, f64> = seed.iter().map(|(s, m)| (m.clone(), *s)).collect();
    let mut rng = 0x1234_5678u64;
    for step in 0..20_000 {
        let member = format!("m{}", xorshift(&mut rng) % 6000).into_bytes();
        let score = (xorshift(&mut rng) % 50) as f64 - 10.0;
        match model.get(&member).copied() {
            Some(old) if step % 3 == 0 => {
                let entry = (old, member.clone());
                assert!(store.run(|t| t.remove(&key(&entry))));
                model.remove(&member);
            }
            Some(old) => {
                move_member(&mut store, &member, old, score);
                model.insert(member, score);
            }
            None => {
                let entry = (score, member.clone());
                store.run(|t| t.insert(owned_key(&entry)));
                model.insert(member, score);
            }
        }
        if step % 997 == 0 {
            let mut expect: Vec<Owned> = model.iter().map(|(m, s)| (*s, m.clone())).collect();
            expect.sort_by(|a, b| super::cmp(&(a.0, &a.1), &(b.0, &b.1)));
            let all = store.run(|t| t.range(0, t.len()).map(into_owned));
            assert_eq!(all, expect, "step {step}");
            let probe = key(&expect[expect.len() / 3]);
            assert_eq!(
                store.run(|t| t.rank(&probe)),
                Some((expect.len() / 3) as u64)
            );
            let below = expect.iter().filter(|k| k.0 < 5.0).count() as u64;
            assert_eq!(store.run(|t| t.count_before(|k| k.0 < 5.0)), below);
            let mid = store.run(|t| t.range(100, 150).map(into_owned));
            assert_eq!(mid, expect[100..150.min(expect.len())].to_vec());
        }
    }
    // Drain: every page but the free chain goes.
    let keys: Vec<Owned> = model.iter().map(|(m, s)| (*s, m.clone())).collect();
    for entry in &keys {
        assert!(store.run(|t| t.remove(&key(entry))));
    }
    let root = ZRoot::parse(&store.root).unwrap();
    assert!(root.tree.top.is_empty());
    // Slots stay compact: bounded by the most pages ever live.
    assert!(root.tree.slots < 200, "slots {}", root.tree.slots);
}

/// Moves `member` from score `old` to `new` as ZADD and ZINCRBY do: the
/// old entry removed, the new one inserted, in one edit.
fn move_member(store: &mut Store, member: &[u8], old: f64, new: f64) {
    let from = (old, member.to_vec());
    let (from, to) = (key(&from), owned_key(&(new, member.to_vec())));
    store.run(|t| {
        let need = t.missing_for([&from, &to])?;
        if !need.is_empty() {
            return Err(Miss::Need(need));
        }
        t.move_entry(&from, to.clone())
    });
}

#[test]
fn small_moves_within_a_leaf_keep_the_order() {
    // Scores nudged by a little (ZINCRBY of a leaderboard): most moves
    // stay in their leaf, to an earlier place, a later one or the same.
    let seed: Vec<Owned> = (0..3000u64)
        .map(|i| (i as f64, format!("p{i}").into_bytes()))
        .collect();
    let mut store = Store::built(&seed, 3);
    let mut model: BTreeMap<Vec<u8>, f64> = seed.iter().map(|(s, m)| (m.clone(), *s)).collect();
    let mut rng = 0x51_7cc1_b727u64;
    for step in 0..6_000 {
        let member = format!("p{}", xorshift(&mut rng) % 3000).into_bytes();
        let old = model[&member];
        let new = old + (xorshift(&mut rng) % 9) as f64 - 4.0 + 0.5 * (step % 2) as f64;
        move_member(&mut store, &member, old, new);
        model.insert(member, new);
        if step % 500 == 0 {
            let mut expect: Vec<Owned> = model.iter().map(|(m, s)| (*s, m.clone())).collect();
            expect.sort_by(|a, b| super::cmp(&(a.0, &a.1), &(b.0, &b.1)));
            let all = store.run(|t| t.range(0, t.len()).map(into_owned));
            assert_eq!(all, expect, "step {step}");
        }
    }
}

#[test]
fn a_move_within_a_leaf_rewrites_the_leaf_alone() {
    // A member nudged between its neighbours keeps its leaf's count, and
    // (unless it is the leaf's greatest) the leaf's greatest entry: the
    // inner page above it stays as stored.
    let seed: Vec<Owned> = (0..20_000u64)
        .map(|i| (i as f64, format!("m{i}").into_bytes()))
        .collect();
    let mut store = Store::built(&seed, 5);
    assert!(ZRoot::parse(&store.root).unwrap().tree.height >= 2);
    let mut model: BTreeMap<Vec<u8>, f64> = seed.iter().map(|(s, m)| (m.clone(), *s)).collect();
    let mut rng = 0x2545_f491u64;
    let mut leaf_alone = 0;
    for _ in 0..2_000 {
        let i = xorshift(&mut rng) % 20_000;
        let member = format!("m{i}").into_bytes();
        let (old, new) = (
            model[&member],
            i as f64 + 0.25 * (xorshift(&mut rng) % 4) as f64,
        );
        move_member(&mut store, &member, old, new);
        model.insert(member, new);
        leaf_alone += usize::from(store.written == 1);
    }
    assert!(
        leaf_alone > 1_800,
        "{leaf_alone} of 2000 moves wrote one page"
    );
    let mut expect: Vec<Owned> = model.iter().map(|(m, s)| (*s, m.clone())).collect();
    expect.sort_by(|a, b| super::cmp(&(a.0, &a.1), &(b.0, &b.1)));
    assert_eq!(store.run(|t| t.range(0, t.len()).map(into_owned)), expect);
}

#[test]
fn a_shrinking_set_merges_its_pages() {
    let entries: Vec<Owned> = (0..20_000u64)
        .map(|i| (i as f64, format!("m{i:05}").into_bytes()))
        .collect();
    let mut store = Store::built(&entries, 9);
    let full = store.leaf_sizes().len();
    // Remove 95%, scattered: every leaf loses most of its entries.
    let mut rng = 0x9e37_79b9u64;
    let mut kept = Vec::new();
    for entry in &entries {
        match xorshift(&mut rng) % 20 {
            0 => kept.push(entry.clone()),
            _ => assert!(store.run(|t| t.remove(&key(entry)))),
        }
    }
    assert_eq!(store.run(|t| t.range(0, t.len()).map(into_owned)), kept);
    let sizes = store.leaf_sizes();
    assert_eq!(sizes.iter().sum::<usize>(), kept.len());
    // Every leaf but one (the last one merged into) is at least a quarter
    // full, so pages shrank with the entries.
    let small = sizes.iter().filter(|&&n| n < LEAF_ENTRIES / 4).count();
    assert!(
        small <= 1,
        "{small} small leaves of {}: {sizes:?}",
        sizes.len()
    );
    assert!(
        sizes.len() <= kept.len() / (LEAF_ENTRIES / 4) + 1,
        "{} leaves for {} entries ({full} before)",
        sizes.len(),
        kept.len()
    );
}

#[test]
fn build_then_flatten_round_trips() {
    let entries: Vec<Owned> = (0..10_000u64)
        .map(|i| (i as f64 / 3.0, format!("member-{i:05}").into_bytes()))
        .collect();
    let packed = packed(&entries);
    let built = build(Packed::parse(&packed).unwrap(), 5).unwrap();
    let root = ZRoot::parse(&built.root).unwrap();
    assert_eq!(root.len(), 10_000);
    assert!(root.tree.height >= 2);
    let pages: Vec<(u64, Option<Vec<u8>>)> = built
        .pages
        .iter()
        .map(|(p, b)| (*p, Some(b.clone())))
        .collect();
    assert!(pages.iter().all(|(p, _)| root.pages().contains(p)));
    assert_eq!(flatten(&built.root, &pages).unwrap(), packed);
    // The member index finds every member's score.
    let table = root.table(&pages).unwrap();
    let entry = table.get(b"member-04242").unwrap().unwrap();
    assert_eq!(super::paged::index_score(&entry).unwrap(), 4242.0 / 3.0);
}
