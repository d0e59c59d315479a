//! The paged list against a `VecDeque` model: each step plans its pages
//! from the stored root as the server does, loads only those, edits, and
//! stores what `finish` returns; the stored list must read as the model.

use std::collections::{BTreeMap, VecDeque};

use proptest::prelude::*;

use super::*;
use crate::paged::is_paged;

/// A list as the cache would hold it: a value and the pages of its
/// current generation (a replaced root's pages are reclaimed).
#[derive(Default)]
struct Store {
    value: Option<Vec<u8>>,
    pages: BTreeMap<u64, Vec<u8>>,
    generations: u64,
    /// The pages the last load planned (a write may touch only those).
    declared: std::cell::RefCell<Vec<u64>>,
}

#[derive(Clone, Debug)]
enum Op {
    Push(bool, Vec<u16>),
    Pop(bool, u64),
    Set(u64, u16),
    Trim(i64, i64),
    Range(u64, u64),
    Get(i64),
}

fn end(head: bool) -> End {
    if head {
        End::Head
    } else {
        End::Tail
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), prop::collection::vec(any::<u16>(), 1..40)).prop_map(|(h, v)| Op::Push(h, v)),
        2 => (any::<bool>(), 0u64..30).prop_map(|(h, n)| Op::Pop(h, n)),
        1 => (any::<u64>(), any::<u16>()).prop_map(|(i, v)| Op::Set(i, v)),
        1 => (-80i64..80, -80i64..80).prop_map(|(a, b)| Op::Trim(a, b)),
        1 => (0u64..200, 0u64..200).prop_map(|(a, b)| Op::Range(a, b)),
        1 => (-200i64..200).prop_map(Op::Get),
    ]
}

fn element(v: u16) -> Vec<u8> {
    // Varied lengths so byte limits split at different counts.
    format!("{v}{}", "x".repeat(usize::from(v % 7))).into_bytes()
}

impl Store {
    /// The edit of the stored list with the pages `plan` asks for.
    fn load(&self, plan: impl Fn(&ListRoot) -> Vec<Range<u64>>) -> ListEdit {
        match &self.value {
            None => ListEdit::packed(&[]).unwrap(),
            Some(v) if !is_paged(v) => ListEdit::packed(v).unwrap(),
            Some(v) => {
                let root = ListRoot::parse(v).unwrap();
                let mut pages = BTreeMap::new();
                for range in plan(&root) {
                    for page in range {
                        self.declared.borrow_mut().push(page);
                        if let Some(bytes) = self.pages.get(&page) {
                            pages.insert(page, bytes.clone());
                        }
                    }
                }
                ListEdit::paged(root, pages)
            }
        }
    }

    fn save(&mut self, edit: ListEdit, limit: ListLimit) {
        self.generations += 1;
        let declared = self.declared.take();
        self.declared.replace(declared.clone());
        match edit.finish(limit, self.generations) {
            Stored::Unchanged => {}
            Stored::Empty => {
                self.value = None;
                self.pages.clear();
            }
            Stored::Packed(v) => {
                self.value = Some(v);
                self.pages.clear();
            }
            Stored::Paged { root, pages } => {
                let (gen, _) = owned_stamp(&root);
                assert_eq!(gen, owned_stamp(self.value.as_ref().unwrap()).0);
                for (page, bytes) in pages {
                    assert!(
                        self.declared.borrow().contains(&page),
                        "page {page} undeclared"
                    );
                    match bytes {
                        Some(b) => self.pages.insert(page, b),
                        None => self.pages.remove(&page),
                    };
                }
                self.value = Some(root);
            }
            Stored::Built(built) => {
                self.pages = built.pages.into_iter().collect();
                self.value = Some(built.root);
            }
        }
    }

    /// Every element, checking the layout's invariants on the way.
    fn read_all(&self) -> Vec<Vec<u8>> {
        let Some(v) = &self.value else {
            assert!(self.pages.is_empty());
            return Vec::new();
        };
        if !is_paged(v) {
            let p = Packed::parse(v).unwrap();
            assert!(!p.is_empty(), "a stored list is never empty");
            return p.iter().map(|e| e.unwrap().to_vec()).collect();
        }
        let root = ListRoot::parse(v).unwrap();
        let range = root.header.pages.clone();
        assert_eq!(
            self.pages.keys().copied().collect::<Vec<_>>(),
            range.clone().collect::<Vec<_>>()
        );
        let pages: Vec<Packed<'_>> = range
            .clone()
            .map(|p| Packed::parse(&self.pages[&p]).unwrap())
            .collect();
        for (i, (page, packed)) in range.zip(&pages).enumerate() {
            assert_eq!(
                packed.len() as u64,
                root.elements_of(page).end - root.elements_of(page).start,
                "page {i}"
            );
            assert!(!packed.is_empty());
        }
        let flat = crate::paged::flatten(pages).unwrap();
        let all: Vec<Vec<u8>> = Packed::parse(&flat)
            .unwrap()
            .iter()
            .map(|e| e.unwrap().to_vec())
            .collect();
        assert_eq!(all.len() as u64, root.len);
        all
    }
}

fn owned_stamp(root: &[u8]) -> (u64, Range<u64>) {
    let (h, _) = RootHeader::parse(root).unwrap();
    (h.generation, h.pages)
}

fn run(ops: Vec<Op>, limit: ListLimit) {
    let mut store = Store::default();
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    for op in ops {
        match op {
            Op::Push(head, values) => {
                let elements: Vec<Vec<u8>> = values.into_iter().map(element).collect();
                let refs: Vec<&[u8]> = elements.iter().map(Vec::as_slice).collect();
                let mut edit = store.load(|r| vec![r.pages_for_push(end(head), refs.len() as u64)]);
                edit.push(end(head), &refs).unwrap();
                for e in elements {
                    if head {
                        model.push_front(e)
                    } else {
                        model.push_back(e)
                    }
                }
                store.save(edit, limit);
            }
            Op::Pop(head, count) => {
                let mut edit = store.load(|r| vec![r.pages_for_pop(end(head), count)]);
                let popped = edit.pop(end(head), count).unwrap();
                let expected: Vec<Vec<u8>> = (0..count)
                    .map_while(|_| {
                        if head {
                            model.pop_front()
                        } else {
                            model.pop_back()
                        }
                    })
                    .collect();
                assert_eq!(popped, expected);
                store.save(edit, limit);
            }
            Op::Set(index, v) if !model.is_empty() => {
                let i = index % model.len() as u64;
                let mut edit = store.load(|r| vec![r.pages_covering(i..i + 1)]);
                edit.set(i, &element(v)).unwrap();
                model[i as usize] = element(v);
                store.save(edit, limit);
            }
            Op::Set(..) => {}
            Op::Trim(start, stop) => {
                let keep = crate::list::clamp_range(model.len(), start, stop);
                let keep = keep.start as u64..keep.end as u64;
                if keep.is_empty() {
                    store = Store::default();
                    model.clear();
                } else {
                    let mut edit = store.load(|r| r.pages_for_trim(&keep).to_vec());
                    edit.trim(keep.clone()).unwrap();
                    model = model
                        .drain(keep.start as usize..keep.end as usize)
                        .collect();
                    store.save(edit, limit);
                }
            }
            Op::Range(a, b) => {
                let range = a.min(b)..a.max(b);
                let edit = store.load(|r| vec![r.pages_covering(range.clone())]);
                let got: Vec<Vec<u8>> = edit
                    .range(range.clone())
                    .unwrap()
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect();
                let end = (range.end as usize).min(model.len());
                let start = (range.start as usize).min(end);
                assert_eq!(got, model.range(start..end).cloned().collect::<Vec<_>>());
            }
            Op::Get(index) => {
                let len = model.len();
                let edit = store.load(|r| {
                    crate::list::resolve_index(len, index)
                        .map(|i| vec![r.pages_covering(i as u64..i as u64 + 1)])
                        .unwrap_or_default()
                });
                let expected = crate::list::resolve_index(len, index).map(|i| model[i].clone());
                assert_eq!(edit.get(index).unwrap().map(<[u8]>::to_vec), expected);
            }
        }
        store.declared.borrow_mut().clear();
        assert_eq!(store.read_all(), model.iter().cloned().collect::<Vec<_>>());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn paged_list_matches_a_deque_by_count(ops in prop::collection::vec(op(), 1..60), cap in 1usize..6) {
        run(ops, ListLimit::Count(cap));
    }

    #[test]
    fn paged_list_matches_a_deque_by_bytes(ops in prop::collection::vec(op(), 1..60)) {
        run(ops, ListLimit::Bytes(64));
    }
}

#[test]
fn a_big_list_is_built_in_full_pages_and_located_by_arithmetic() {
    let elements: Vec<Vec<u8>> = (0..1000).map(|i: u32| i.to_string().into_bytes()).collect();
    let refs: Vec<&[u8]> = elements.iter().map(Vec::as_slice).collect();
    let built = build(&refs, ListLimit::Count(128), 9);
    let root = ListRoot::parse(&built.root).unwrap();
    assert_eq!((root.len, root.capacity, root.head_len), (1000, 128, 128));
    assert_eq!(root.header.pages, FIRST_PAGE..FIRST_PAGE + 8);
    assert_eq!(root.locate(300), (FIRST_PAGE + 2, 44));
    assert_eq!(
        root.pages_covering(250..260),
        FIRST_PAGE + 1..FIRST_PAGE + 3
    );
    assert_eq!(ListLimit::from_setting(-2), ListLimit::Bytes(8192));
    assert_eq!(ListLimit::from_setting(-9), ListLimit::Bytes(65536));
    assert_eq!(ListLimit::from_setting(0), ListLimit::Count(1));
}

#[test]
fn corrupt_roots_are_errors() {
    let built = build(&[b"a", b"b", b"c"], ListLimit::Count(1), 3);
    assert!(ListRoot::parse(&built.root).is_ok());
    for cut in 0..built.root.len() {
        assert_eq!(ListRoot::parse(&built.root[..cut]), Err(Corrupt));
    }
    let mut bad = built.root.clone();
    bad[33] = 9; // len no longer matches the pages
    assert_eq!(ListRoot::parse(&bad), Err(Corrupt));
}
