//! Edits and reads of a paged sorted set's tree (`zset::tree::Tree`): a
//! set built whole, then the input's inserts, removals, moves (within a
//! leaf and across leaves), ranks and a final range, each run until it
//! has the pages it needs and its pages written back. As built, every
//! answer is checked against a model. With one page overwritten by input
//! bytes an operation may only fail (`Miss::Corrupt`), never panic: that
//! reaches each page decoder, the leaf splice and the inner pages' count
//! patch over arbitrary bytes.
#![no_main]

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use citadel_collections::zset::paged::{build, ZRoot};
use citadel_collections::zset::tree::{into_owned, Miss, Tree};
use citadel_collections::{zset, Packed};
use libfuzzer_sys::fuzz_target;

/// A stored set: its root and its pages.
struct Stored {
    root: Vec<u8>,
    pages: BTreeMap<u64, Vec<u8>>,
}

impl Stored {
    /// Runs `op` on the tree until it has the pages it needs, then writes
    /// back what it changed. None: a page or the root is corrupt.
    fn run<R>(&mut self, mut op: impl FnMut(&mut Tree<'_>) -> Result<R, Miss>) -> Option<R> {
        let root_bytes = self.root.clone();
        let root = ZRoot::parse(&root_bytes).ok()?;
        let mut planned: BTreeSet<u64> = Tree::free_head(&root.tree).into_iter().collect();
        loop {
            let loaded: Vec<(u64, Option<Vec<u8>>)> = planned
                .iter()
                .map(|p| (*p, self.pages.get(p).cloned()))
                .collect();
            let mut tree = root.tree(&loaded);
            match op(&mut tree) {
                Ok(r) => {
                    let (new_root, written) = root.after_tree_edit(tree);
                    self.pages.extend(written);
                    self.root = new_root;
                    return Some(r);
                }
                // A page asked for again (missing or unreadable): corrupt.
                Err(Miss::Need(pages)) if pages.iter().any(|p| !planned.contains(p)) => {
                    planned.extend(pages)
                }
                Err(_) => return None,
            }
        }
    }
}

fn member(hi: u8, lo: u8) -> Vec<u8> {
    format!("m{}", u16::from_be_bytes([hi, lo]) % 9000).into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, mut rest)) = data.split_first() else {
        return;
    };
    // Up to 8,128 entries: two inner levels past ~2,300 (48 x 48 built).
    let n = usize::from(head >> 1) * 64;
    let members: Vec<Vec<u8>> = (0..n).map(|i| format!("m{i}").into_bytes()).collect();
    let mut model: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
    let mut entries = Vec::with_capacity(n);
    for (i, m) in members.iter().enumerate() {
        let score = (i / 3) as f64;
        model.insert(m.clone(), score);
        entries.push((score, &m[..]));
    }
    entries.sort_by(zset::cmp);
    let packed = zset::encode(&entries);
    let Ok(built) = build(Packed::parse(&packed).expect("encoded"), 1) else {
        return;
    };
    let mut stored = Stored {
        root: built.root,
        pages: built.pages.into_iter().collect(),
    };
    let corrupt = head & 1 == 1;
    if corrupt {
        let [pick, len, tail @ ..] = rest else {
            return;
        };
        let Some(&page) = stored
            .pages
            .keys()
            .nth(usize::from(*pick) % stored.pages.len().max(1))
        else {
            return;
        };
        let (bytes, ops) = tail.split_at(usize::from(*len).min(tail.len()));
        stored.pages.insert(page, bytes.to_vec());
        rest = ops;
    }
    for op in rest.chunks_exact(4) {
        let m = member(op[1], op[2]);
        let score = f64::from(op[3]) - 64.0;
        let old = model.get(&m).copied();
        let done = match (op[0] % 4, old) {
            (0, None) => stored
                .run(|t| t.insert((score, Cow::Owned(m.clone()))))
                .map(|()| {
                    model.insert(m.clone(), score);
                }),
            (1, Some(old)) => {
                stored
                    .run(|t| t.remove(&(old, Cow::Borrowed(&m[..]))))
                    .map(|found| {
                        assert!(corrupt || found, "a member of the model is in the tree");
                        model.remove(&m);
                    })
            }
            (2, Some(old)) => stored
                .run(|t| {
                    t.move_entry(
                        &(old, Cow::Borrowed(&m[..])),
                        (score, Cow::Owned(m.clone())),
                    )
                })
                .map(|()| {
                    model.insert(m.clone(), score);
                }),
            (3, Some(old)) => stored
                .run(|t| t.rank(&(old, Cow::Borrowed(&m[..]))))
                .map(|rank| {
                    let want = model
                        .iter()
                        .filter(|(k, s)| zset::cmp(&(**s, &k[..]), &(old, &m[..])).is_lt())
                        .count() as u64;
                    assert!(corrupt || rank == Some(want), "rank of {m:?}");
                }),
            _ => Some(()),
        };
        if done.is_none() {
            assert!(corrupt, "an intact set reads and edits without error");
            return;
        }
    }
    let all = stored.run(|t| t.range(0, t.len()).map(into_owned));
    if !corrupt {
        let mut want: Vec<(f64, Vec<u8>)> = model.into_iter().map(|(m, s)| (s, m)).collect();
        want.sort_by(|a, b| zset::cmp(&(a.0, &a.1), &(b.0, &b.1)));
        assert_eq!(all, Some(want));
    }
});
