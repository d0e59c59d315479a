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
    /// Pushes and pops `push_root` / `pop_root` did.
    edited_in_root: std::cell::Cell<usize>,
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
                let legacy = root.legacy_pages().into_iter().flatten();
                for range in plan(&root).into_iter().chain(legacy.map(|p| p..p + 1)) {
                    for page in range {
                        self.declared.borrow_mut().push(page);
                        if let Some(bytes) = self.pages.get(&page) {
                            pages.insert(page, bytes.clone());
                        }
                    }
                }
                ListEdit::paged(v, pages, Vec::new(), Vec::new()).unwrap()
            }
        }
    }

    /// `edit` (`push_root` or `pop_root`) on the stored root, if paged:
    /// the edit and the root with its writes applied (None: it
    /// declined). Every prefix of its writes (a kill -9 midway) leaves
    /// the old list.
    fn in_root(
        &self,
        edit: impl FnOnce(&[u8], &mut Vec<u8>) -> Result<Option<EndEdit>, Corrupt>,
    ) -> Option<(EndEdit, Vec<u8>)> {
        let value = self.value.as_ref().filter(|v| is_paged(v))?;
        let mut out = Vec::new();
        let done = edit(value, &mut out).unwrap()?;
        let old = self.read_all();
        let writes = done.writes(&out);
        assert_eq!(
            writes.last().map(|w| w.1.len()),
            Some(1),
            "the selector last"
        );
        for stored in 0..writes.len() {
            let mut partial = value.clone();
            for (at, bytes) in &writes[..stored] {
                partial[*at..*at + bytes.len()].copy_from_slice(bytes);
            }
            assert_eq!(
                self.read_value(Some(&partial)),
                old,
                "{stored} writes stored"
            );
        }
        let mut edited = value.clone();
        done.apply_to(&mut edited, &out).unwrap();
        Some((done, edited))
    }

    /// Checks an edit in the root (`in_root`: whether its answer was
    /// right, the root edited) against what the general edit stored,
    /// then keeps the edited root (so edits follow edits).
    fn same_root(&mut self, in_root: Option<(bool, Vec<u8>)>) {
        let Some((right, root)) = in_root else {
            return;
        };
        assert!(right, "the edit in the root answered wrong");
        let general = self.value.clone().expect("the list stays");
        assert!(is_paged(&general), "the general edit stored it packed");
        let (edited, written) = (ListRoot::parse(&root), ListRoot::parse(&general));
        let counts = |r: ListRoot| {
            (
                r.header.generation,
                r.header.pages,
                r.len,
                r.head_len,
                r.tail_len,
            )
        };
        assert_eq!(edited.map(counts), written.map(counts));
        assert_eq!(
            self.read_value(Some(&root)),
            self.read_all(),
            "the lists differ"
        );
        self.value = Some(root);
        self.edited_in_root.set(self.edited_in_root.get() + 1);
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
            Stored::Paged { root, pages, .. } => {
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
        self.read_value(self.value.as_ref())
    }

    /// [`Store::read_all`] with `value` stored instead.
    fn read_value(&self, value: Option<&Vec<u8>>) -> Vec<Vec<u8>> {
        let Some(v) = value else {
            assert!(self.pages.is_empty());
            return Vec::new();
        };
        if !is_paged(v) {
            let p = Packed::parse(v).unwrap();
            assert!(!p.is_empty(), "a stored list is never empty");
            return p.iter().map(|e| e.unwrap().to_vec()).collect();
        }
        let root = ListRoot::parse(v).unwrap();
        // (An earlier-layout root's stamp names its partial end pages too.)
        let range = owned_stamp(v).1;
        assert_eq!(
            self.pages.keys().copied().collect::<Vec<_>>(),
            range.clone().collect::<Vec<_>>()
        );
        let pages: Vec<Packed<'_>> = range
            .clone()
            .map(|p| Packed::parse(&self.pages[&p]).unwrap())
            .collect();
        if inline(v).unwrap().is_some() {
            for (page, packed) in range.zip(&pages) {
                assert_eq!(packed.len(), root.capacity as usize, "page {page} full");
            }
        }
        let flat = flatten(v, pages).unwrap();
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

/// A store of generation 1 and the start of its root: the header naming
/// `pages` (a layout's fixed part follows).
fn empty_store(pages: Range<u64>) -> (Store, Vec<u8>) {
    let store = Store {
        generations: 1,
        ..Store::default()
    };
    let mut root = Vec::new();
    RootHeader {
        generation: 1,
        version: 0,
        pages,
    }
    .write(&mut root);
    (store, root)
}

/// Stores each chunk of elements as the page numbered beside it.
fn store_pages<'a>(
    store: &mut Store,
    pages: Range<u64>,
    chunks: impl IntoIterator<Item = &'a [Vec<u8>]>,
) {
    for (page, chunk) in pages.zip(chunks) {
        store
            .pages
            .insert(page, encode(chunk.iter().map(Vec::as_slice)));
    }
}

/// A list stored in the earlier layout: a head page of `head` elements,
/// full pages of `capacity`, a partial tail page.
fn legacy_store(values: &[u16], capacity: usize, head: usize) -> (Store, VecDeque<Vec<u8>>) {
    let elements: Vec<Vec<u8>> = values.iter().copied().map(element).collect();
    let head = head.clamp(1, capacity).min(elements.len());
    let mut chunks = vec![&elements[..head]];
    chunks.extend(elements[head..].chunks(capacity));
    let pages = FIRST_PAGE..FIRST_PAGE + chunks.len() as u64;
    let (mut store, mut root) = empty_store(pages.clone());
    root.extend_from_slice(&(elements.len() as u64).to_le_bytes());
    root.extend_from_slice(&(capacity as u32).to_le_bytes());
    root.extend_from_slice(&(head as u32).to_le_bytes());
    store_pages(&mut store, pages, chunks);
    store.value = Some(root);
    (store, elements.into())
}

/// A list stored in the second layout (before the editable one):
/// `head` elements inline at the head, full pages of `capacity`, the
/// rest inline at the tail (last first), each end a packed value.
fn second_layout_store(values: &[u16], capacity: usize, head: usize) -> (Store, VecDeque<Vec<u8>>) {
    let elements: Vec<Vec<u8>> = values.iter().copied().map(element).collect();
    let head = head.min(capacity - 1).min(elements.len());
    let full = (elements.len() - head) / capacity;
    let (head_elements, rest) = elements.split_at(head);
    let (paged, tail) = rest.split_at(full * capacity);
    let pages = FIRST_PAGE..FIRST_PAGE + full as u64;
    let (mut store, mut root) = empty_store(pages.clone());
    let head_bytes = encode(head_elements.iter().map(Vec::as_slice));
    let tail_bytes = encode(tail.iter().rev().map(Vec::as_slice));
    root.extend_from_slice(&(elements.len() as u64).to_le_bytes());
    for count in [capacity, head, tail.len(), head_bytes.len()] {
        root.extend_from_slice(&(count as u32).to_le_bytes());
    }
    root.extend_from_slice(&head_bytes);
    root.extend_from_slice(&tail_bytes);
    store_pages(&mut store, pages, paged.chunks(capacity));
    assert!(!is_editable_layout(&root));
    store.value = Some(root);
    (store, elements.into())
}

/// Checks that an in-root edit planned from the root parsed beforehand
/// (the command's plan parses it) is the one planned from its bytes.
fn same_from_parsed(
    root: &[u8],
    edit: &Option<EndEdit>,
    out: &[u8],
    plan: impl FnOnce(&ListRoot, &mut Vec<u8>) -> Result<Option<EndEdit>, Corrupt>,
) {
    let parsed = ListRoot::parse(root).unwrap();
    let mut again = Vec::new();
    let from_parsed = plan(&parsed, &mut again).unwrap();
    assert_eq!(&from_parsed, edit);
    if edit.is_some() {
        assert_eq!(again, out);
    }
}

/// An edit's writes, owned (to compare edits planned two ways).
fn writes_of(edit: &EndEdit, out: &[u8]) -> Vec<(usize, Vec<u8>)> {
    edit.writes(out)
        .iter()
        .map(|&(at, b)| (at, b.to_vec()))
        .collect()
}

/// Checks that an in-root edit planned from the root's head alone (a
/// command's direct edit of the root as stored: `EditableRoot::from_head`)
/// has the writes and length of the one planned from its bytes; None from
/// the head for a root of an earlier layout only.
fn same_from_head(
    root: &[u8],
    edit: &Option<EndEdit>,
    out: &[u8],
    plan: impl FnOnce(&EditableRoot, &mut Vec<u8>) -> Result<Option<EndEdit>, Corrupt>,
) {
    let head = &root[..root.len().min(ROOT_HEAD_LEN)];
    let Some(parsed) = EditableRoot::from_head(head, root.len()).unwrap() else {
        assert!(!is_editable_layout(root));
        assert!(edit.is_none());
        return;
    };
    let mut again = Vec::new();
    let from_head = plan(&parsed, &mut again).unwrap();
    assert_eq!(from_head.is_some(), edit.is_some());
    if let (Some(a), Some(b)) = (edit, &from_head) {
        assert_eq!(a.len, b.len);
        assert_eq!(writes_of(a, out), writes_of(b, &again));
        assert_eq!(writes_of(b, &again), spans_of(b, again));
    }
}

/// An edit's writes as an engine storing from the planning buffer sees
/// them ([`EndEdit::spans`] over the buffer with the selector appended).
fn spans_of(edit: &EndEdit, mut out: Vec<u8>) -> Vec<(usize, Vec<u8>)> {
    edit.append_selector(&mut out);
    let mut from = 0;
    let spans = edit.spans();
    let writes = spans
        .iter()
        .map(|&(at, len)| {
            from += len;
            (at, out[from - len..from].to_vec())
        })
        .collect();
    assert_eq!(from, out.len(), "the spans cover the buffer");
    writes
}

/// [`same_from_head`] of a pop of `count` at `end`, planned from the end's
/// front read whole and cut right after the popped elements (`popped`),
/// which it hands over the same; cut one byte shorter, it is corrupt.
fn same_pop_from_head(
    root: &[u8],
    edit: &Option<EndEdit>,
    out: &[u8],
    (end, count, limit): (End, u64, ListLimit),
    popped: &[Vec<u8>],
) {
    let head = &root[..root.len().min(ROOT_HEAD_LEN)];
    let Some(parsed) = EditableRoot::from_head(head, root.len()).unwrap() else {
        return same_from_head(root, edit, out, |_, _| Ok(None));
    };
    let front = &root[parsed.front(end)];
    let taken: usize = popped
        .iter()
        .map(|e| PackedWriter::element_cost(e.len()))
        .sum();
    // (A pop declined hands nothing over: only the whole front plans it.)
    let cuts = if edit.is_some() {
        vec![front.len(), taken]
    } else {
        vec![front.len()]
    };
    for cut in cuts {
        let front = &front[..cut];
        let mut from_front = None;
        same_from_head(root, edit, out, |parsed, out| {
            let planned = pop_front(parsed, end, count, front, limit, out)?;
            from_front.clone_from(&planned);
            Ok(planned)
        });
        if let Some(planned) = from_front {
            let got: Vec<Vec<u8>> = planned
                .popped_front(front)
                .map(|e| e.unwrap().to_vec())
                .collect();
            assert_eq!(got, popped);
        }
    }
    if edit.is_some() && taken > 0 {
        let short = &front[..taken - 1];
        let mut out = Vec::new();
        assert_eq!(
            pop_front(&parsed, end, count, short, limit, &mut out),
            Err(Corrupt)
        );
    }
}

fn run(ops: Vec<Op>, limit: ListLimit) -> Store {
    run_from(Store::default(), VecDeque::new(), ops, limit)
}

fn run_from(
    mut store: Store,
    mut model: VecDeque<Vec<u8>>,
    ops: Vec<Op>,
    limit: ListLimit,
) -> Store {
    assert_eq!(store.read_all(), model.iter().cloned().collect::<Vec<_>>());
    for op in ops {
        match op {
            Op::Push(head, values) => {
                let elements: Vec<Vec<u8>> = values.into_iter().map(element).collect();
                let refs: Vec<&[u8]> = elements.iter().map(Vec::as_slice).collect();
                let in_root = store.in_root(|root, out| {
                    let edit = push_root(root, None, end(head), &refs, limit, out)?;
                    same_from_parsed(root, &edit, out, |parsed, out| {
                        push_root(root, parsed.editable(), end(head), &refs, limit, out)
                    });
                    same_from_head(root, &edit, out, |parsed, out| {
                        Ok(push_head(parsed, end(head), &refs, limit, out))
                    });
                    Ok(edit)
                });
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
                let len = model.len() as u64;
                store.same_root(in_root.map(|(edit, root)| (edit.len == len, root)));
            }
            Op::Pop(head, count) => {
                let mut popped_in_root = Vec::new();
                let in_root = store.in_root(|root, out| {
                    let edit = pop_root(root, None, end(head), count, limit, out)?;
                    same_from_parsed(root, &edit, out, |parsed, out| {
                        pop_root(root, parsed.editable(), end(head), count, limit, out)
                    });
                    for e in edit.iter().flat_map(|edit| edit.popped(root)) {
                        popped_in_root.push(e?.to_vec());
                    }
                    let how = (end(head), count, limit);
                    same_pop_from_head(root, &edit, out, how, &popped_in_root);
                    Ok(edit)
                });
                let mut edit = store.load(|r| vec![r.pages_for_pop(end(head), count)]);
                let popped = edit.pop(end(head), count).unwrap();
                if in_root.is_some() {
                    assert_eq!(popped_in_root, popped);
                } else {
                    assert!(popped_in_root.is_empty());
                }
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
                store.same_root(in_root.map(|(_, root)| (true, root)));
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
    store
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn paged_list_matches_a_deque_by_count(ops in prop::collection::vec(op(), 1..60), cap in 1usize..6) {
        run(ops, ListLimit::Count(cap));
    }

    #[test]
    fn an_earlier_layout_list_reads_and_converts_on_write(
        values in prop::collection::vec(any::<u16>(), 2..40),
        cap in 2usize..6,
        head in 1usize..6,
        ops in prop::collection::vec(op(), 1..30),
    ) {
        let (store, model) = legacy_store(&values, cap, head);
        run_from(store, model, ops, ListLimit::Count(cap));
    }

    #[test]
    fn a_second_layout_list_reads_and_converts_on_write(
        values in prop::collection::vec(any::<u16>(), 2..40),
        cap in 2usize..6,
        head in 0usize..6,
        ops in prop::collection::vec(op(), 1..30),
    ) {
        let (store, model) = second_layout_store(&values, cap, head);
        let original = store.value.clone();
        let store = run_from(store, model, ops, ListLimit::Count(cap));
        // Written (not only read): in the editable layout.
        if let Some(root) = store.value.as_ref().filter(|v| is_paged(v)) {
            prop_assert!(is_editable_layout(root) || store.value == original);
        }
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
    assert_eq!(
        (root.len, root.capacity, root.head_len, root.tail_len),
        (1000, 128, 0, 104)
    );
    assert_eq!(root.header.pages, FIRST_PAGE..FIRST_PAGE + 7);
    assert_eq!(root.locate(300), Place::Page(FIRST_PAGE + 2, 44));
    assert_eq!(root.locate(999), Place::Tail(103));
    assert_eq!(
        root.pages_covering(250..260),
        FIRST_PAGE + 1..FIRST_PAGE + 3
    );
    assert_eq!(ListLimit::from_setting(-2), ListLimit::Bytes(8192));
    assert_eq!(ListLimit::from_setting(-9), ListLimit::Bytes(65536));
    assert_eq!(ListLimit::from_setting(0), ListLimit::Count(1));
}

#[test]
fn a_packed_list_is_paged_past_its_byte_cap_whatever_the_limit() {
    // 300 short elements: ~1.2 KB, under 8 KiB and under 1,000 elements.
    for limit in [ListLimit::Bytes(8192), ListLimit::Count(1000)] {
        let mut list = ListEdit::packed(&[]).unwrap();
        let mut pushed = 0;
        loop {
            list.push(End::Tail, &[b"abc"]).unwrap();
            pushed += 1;
            let bytes = list.head.len();
            if !limit.fits(pushed, bytes) {
                assert!(bytes > PACKED_MAX_BYTES, "{limit:?}: {bytes} bytes");
                break;
            }
        }
        assert!(list.build_pages(limit).is_some(), "{limit:?}");
        let Stored::Built(built) = list.finish(limit, 5) else {
            panic!("{limit:?}: not paged");
        };
        let root = ListRoot::parse(&built.root).unwrap();
        assert_eq!(root.len, pushed as u64);
    }
    // The cap is in bytes, inclusive.
    assert!(ListLimit::Bytes(8192).fits(100, PACKED_MAX_BYTES));
    assert!(!ListLimit::Bytes(8192).fits(100, PACKED_MAX_BYTES + 1));
}

#[test]
fn corrupt_roots_are_errors() {
    let built = build(&[b"a", b"b", b"c"], ListLimit::Count(1), 3);
    assert!(ListRoot::parse(&built.root).is_ok());
    let open = |root: &[u8]| ListEdit::paged(root, [], Vec::new(), Vec::new()).map(|_| ());
    assert_eq!(open(&built.root), Ok(()));
    for cut in 0..built.root.len() {
        assert_eq!(open(&built.root[..cut]), Err(Corrupt), "cut at {cut}");
    }
    // Read from its head (a direct edit): every length but its own, and
    // the corruptions below, are errors.
    let root = &built.root;
    let from_head = |bytes: &[u8], len| EditableRoot::from_head(&bytes[..ROOT_HEAD_LEN], len);
    assert!(from_head(root, root.len()).unwrap().is_some());
    for len in [0, ROOT_HEAD_LEN, root.len() - 1, root.len() + 1] {
        assert_eq!(from_head(root, len), Err(Corrupt), "length {len}");
    }
    let mut bad = built.root.clone();
    bad[EDIT_STATE.start + 9] = 9; // len no longer matches the pages
    assert_eq!(ListRoot::parse(&bad), Err(Corrupt));
    assert_eq!(from_head(&bad, bad.len()), Err(Corrupt));
    let mut bad = built.root.clone();
    bad[EDIT_STATE.start] = 2; // no such descriptor
    assert_eq!(ListRoot::parse(&bad), Err(Corrupt));
    assert_eq!(from_head(&bad, bad.len()), Err(Corrupt));
    let mut bad = built.root.clone();
    // Descriptor 0's head front past its slot.
    bad[EDIT_STATE.start + 1 + 24..EDIT_STATE.start + 1 + 28]
        .copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(ListRoot::parse(&bad), Err(Corrupt));
    assert_eq!(from_head(&bad, bad.len()), Err(Corrupt));
}

#[test]
fn a_list_down_to_its_inline_tail_goes_packed_in_order() {
    // (Found by the property test: the tail buffer, last element first,
    // was stored as the packed value unreversed.)
    let values: Vec<u16> = (0..36).collect();
    let (store, model) = legacy_store(&values, 4, 4);
    run_from(store, model, vec![Op::Trim(-36, -35)], ListLimit::Count(4));
}

#[test]
fn pushes_and_pops_inside_an_end_buffer_are_edited_in_the_root() {
    let limit = ListLimit::Count(8);
    let values: Vec<u16> = (0..100).collect();
    let refs: Vec<Vec<u8>> = values.iter().copied().map(element).collect();
    let refs: Vec<&[u8]> = refs.iter().map(Vec::as_slice).collect();
    let built = build(&refs, limit, 1);
    let store = Store {
        value: Some(built.root),
        pages: built.pages.into_iter().collect(),
        generations: 1,
        ..Store::default()
    };
    let model = values.into_iter().map(element).collect();
    let ops = (0..40u16).map(|step| {
        let head = step % 3 != 0;
        match step % 4 {
            0 | 1 => Op::Push(head, vec![step, step + 1000]),
            _ => Op::Pop(head, 1 + u64::from(step % 2)),
        }
    });
    let store = run_from(store, model, ops.collect(), limit);
    // (Spills, refills and the empty head of a built list take the
    // general edit.)
    assert!(
        store.edited_in_root.get() >= 20,
        "{} of 40",
        store.edited_in_root.get()
    );
}

/// The room each end of the stored root leaves below its front.
fn rooms_of(store: &Store) -> [u32; 2] {
    let root = ListRoot::parse(store.value.as_ref().expect("a list")).unwrap();
    root.slots.expect("the editable layout").descriptor.fronts
}

#[test]
fn a_root_keeps_room_where_the_list_is_pushed() {
    let limit = ListLimit::Bytes(8192);
    let pushes = |head: bool, from: u16, n: u16| -> Vec<Op> {
        (from..from + n).map(|v| Op::Push(head, vec![v])).collect()
    };
    // A log pushed at the head only: after a few spills its tail keeps
    // the least room and no elements (paged from its head, the list kept
    // the elements short of a page at the head), so its root holds about
    // a page's worth: the head's elements and room.
    let store = run(pushes(true, 0, 3_000), limit);
    let [head, tail] = rooms_of(&store);
    let root = ListRoot::parse(store.value.as_ref().unwrap()).unwrap();
    assert_eq!(root.tail_len, 0);
    let root_len = store.value.as_ref().unwrap().len();
    assert!(
        tail <= 64 && root_len < PAGE_BYTES + 256,
        "{root_len}-byte root; rooms: head {head}, tail {tail}"
    );
    // A pop that refills the empty tail from its page rewrites the root
    // and pushes nowhere: the head keeps the room it had (a queue's
    // pushing end is not shrunk by its popping end's refills).
    let model = store.read_all().into_iter().collect();
    let store = run_from(store, model, vec![Op::Pop(false, 1)], limit);
    assert_eq!(rooms_of(&store)[0], head.max(64), "the head's room");
    // Pushed at the tail too, the next root gives the tail its room.
    let model = store.read_all().into_iter().collect();
    let store = run_from(store, model, pushes(false, 3_000, 300), limit);
    let [_, tail] = rooms_of(&store);
    assert!(tail > 64, "tail room {tail} once the tail is pushed");
}
