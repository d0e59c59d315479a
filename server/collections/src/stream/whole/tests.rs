use super::*;
use crate::stream::group::INVALID_ENTRIES_READ;

fn entry(ms: u64, seq: u64, fields: &[&str]) -> WholeEntry {
    WholeEntry {
        id: StreamId::new(ms, seq),
        fields: fields.iter().map(|f| f.as_bytes().to_vec()).collect(),
    }
}

/// 250 entries (three pages by the node rule) and two groups, one with
/// 300 pending entries (three PEL pages) over two consumers.
pub fn sample() -> WholeStream {
    let entries: Vec<WholeEntry> = (0..250)
        .map(|i| entry(1000 + i, i % 3, &["f", "v", "n", &i.to_string()]))
        .collect();
    let pending = (0..300)
        .map(|i| WholePending {
            id: StreamId::new(1000 + i / 2, i % 2),
            delivery_time: 7000 + i,
            delivery_count: 1 + i % 4,
            consumer: (i % 2) as usize,
        })
        .collect();
    WholeStream {
        meta: StreamMeta {
            length: 250,
            last_id: StreamId::new(5000, 1),
            first_id: StreamId::new(1000, 0),
            max_deleted: StreamId::new(999, 0),
            entries_added: 260,
        },
        entries: Entries::from(&entries[..]),
        groups: vec![
            WholeGroup {
                name: b"workers".to_vec(),
                last_id: StreamId::new(1149, 1),
                entries_read: 150,
                pending,
                consumers: vec![
                    WholeConsumer {
                        name: b"zed".to_vec(),
                        seen_time: 11,
                    },
                    WholeConsumer {
                        name: b"amy".to_vec(),
                        seen_time: 12,
                    },
                ],
            },
            WholeGroup {
                name: b"audit".to_vec(),
                last_id: StreamId::MIN,
                entries_read: INVALID_ENTRIES_READ,
                pending: Vec::new(),
                consumers: Vec::new(),
            },
        ],
    }
}

/// `whole` with its groups and consumers in name order (as read back)
/// and pending entries naming consumers by that order.
fn normalized(mut whole: WholeStream) -> WholeStream {
    whole.groups.sort_by(|a, b| a.name.cmp(&b.name));
    for g in &mut whole.groups {
        let mut order: Vec<usize> = (0..g.consumers.len()).collect();
        order.sort_by(|&a, &b| g.consumers[a].name.cmp(&g.consumers[b].name));
        let mut rank = vec![0; order.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        g.consumers = order.iter().map(|&i| g.consumers[i].clone()).collect();
        for p in &mut g.pending {
            p.consumer = rank[p.consumer];
        }
    }
    whole
}

/// `w`'s entries changed by `edit` (on an owned copy).
fn edit_entries(w: &mut WholeStream, edit: impl FnOnce(&mut Vec<WholeEntry>)) {
    let mut owned = w.entries.to_vec();
    edit(&mut owned);
    w.entries = Entries::from(&owned[..]);
}

fn read_back(built: &Built) -> Result<WholeStream, Corrupt> {
    WholeStream::read(&built.root, |n, buf| {
        let page = built.pages.iter().find(|(page, _)| *page == n);
        page.map(|(_, b)| buf.extend_from_slice(b)).is_some()
    })
}

#[test]
fn streams_build_into_pages_and_read_back_whole() {
    let whole = sample();
    let built = whole.build(42).unwrap();
    // Three entry pages (Redis's 100-entry nodes), then three PEL pages.
    assert_eq!(built.pages.len(), 6);
    assert_eq!(whole.page_count().unwrap(), 6);
    let numbers: Vec<u64> = built.pages.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, vec![0, 1, 2, 3, 4, 5]);
    let root = StreamRoot::parse(&built.root).unwrap();
    assert_eq!(root.header.generation, 42);
    assert_eq!(root.header.pages, 0..6);
    assert_eq!(root.dir[0].count, 100);
    assert_eq!(read_back(&built).unwrap(), normalized(whole));
}

#[test]
fn an_empty_stream_with_a_group_builds_no_page() {
    let mut whole = sample();
    whole.entries = Entries::default();
    whole.meta.length = 0;
    whole.groups.truncate(1);
    whole.groups[0].pending.clear();
    let built = whole.build(1).unwrap();
    assert!(built.pages.is_empty());
    assert_eq!(read_back(&built).unwrap(), normalized(whole));
}

#[test]
fn inconsistent_streams_are_refused() {
    let bad = |f: &dyn Fn(&mut WholeStream)| {
        let mut whole = sample();
        f(&mut whole);
        assert_eq!(whole.check(), Err(Corrupt));
        assert!(whole.build(0).is_err());
    };
    bad(&|w| w.meta.length = 3);
    bad(&|w| edit_entries(w, |v| v.swap(3, 4)));
    bad(&|w| w.meta.last_id = StreamId::new(1, 0));
    bad(&|w| edit_entries(w, |v| v[5].fields.truncate(3)));
    bad(&|w| w.groups[1].name = b"workers".to_vec());
    bad(&|w| w.groups[0].consumers[1].name = b"zed".to_vec());
    bad(&|w| w.groups[0].pending[7].consumer = 2);
    bad(&|w| w.groups[0].pending.swap(0, 1));
    // A page missing from the store is corruption, not an empty stream.
    let built = sample().build(0).unwrap();
    assert!(WholeStream::read(&built.root, |_, _| false).is_err());
}
