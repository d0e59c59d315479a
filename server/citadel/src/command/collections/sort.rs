//! SORT and SORT_RO over lists, sets and sorted sets: numeric or ALPHA
//! order, BY a pattern (`*` replaced by the element, `->field` for a hash
//! field; a pattern without `*` means no sorting), LIMIT, GET patterns
//! (`#` for the element itself), DESC, and STORE into a list. Redis 7.0's
//! rules, including its tie-break (equal scores compare the elements) and
//! the no-sort order of lists and sorted sets (their own, reversed by DESC).

use std::cmp::Ordering;

use citadel_cache::{CacheHandle, ValueKind};
use citadel_collections::{Packed, PackedWriter};
use citadel_resp::num;

use super::value::read_whole;
use super::value::view;
use super::whole::replace_whole;
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

struct SortOpts<'a> {
    by: Option<&'a [u8]>,
    gets: Vec<&'a [u8]>,
    desc: bool,
    alpha: bool,
    limit: Option<(i64, i64)>,
    store: Option<&'a [u8]>,
}

fn parse(args: Args<'_>, read_only: bool, cluster: bool) -> Result<SortOpts<'_>, CmdError> {
    let mut o = SortOpts {
        by: None,
        gets: Vec::new(),
        desc: false,
        alpha: false,
        limit: None,
        store: None,
    };
    let mut i = 2;
    while i < args.len() {
        let left = args.len() - i - 1;
        if args.is(i, "asc") {
            o.desc = false;
        } else if args.is(i, "desc") {
            o.desc = true;
        } else if args.is(i, "alpha") {
            o.alpha = true;
        } else if args.is(i, "limit") && left >= 2 {
            o.limit = Some((args.int(i + 1)?, args.int(i + 2)?));
            i += 2;
        } else if args.is(i, "store") && left >= 1 && !read_only {
            o.store = Some(args.get(i + 1));
            i += 1;
        } else if args.is(i, "by") && left >= 1 {
            let by = args.get(i + 1);
            if cluster && by.contains(&b'*') {
                return Err(CmdError::Static(
                    "ERR BY option of SORT denied in Cluster mode.",
                ));
            }
            o.by = Some(by);
            i += 1;
        } else if args.is(i, "get") && left >= 1 {
            if cluster {
                return Err(CmdError::Static(
                    "ERR GET option of SORT denied in Cluster mode.",
                ));
            }
            o.gets.push(args.get(i + 1));
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

/// SORT's keys for routing and transactions: the source and a STORE
/// destination (the last STORE wins, as in the parser).
pub fn for_each_sort_key<'a>(args: Args<'a>, f: &mut dyn FnMut(&'a [u8])) {
    f(args.get(1));
    let mut store = None;
    let mut i = 2;
    while i + 1 < args.len() {
        if args.is(i, "store") {
            store = Some(args.get(i + 1));
        }
        i += if args.is(i, "limit") {
            3
        } else if args.is(i, "by") || args.is(i, "get") || args.is(i, "store") {
            2
        } else {
            1
        };
    }
    if let Some(key) = store {
        f(key);
    }
}

pub fn sort(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    sort_generic(ctx, args, false)
}

pub fn sort_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    sort_generic(ctx, args, true)
}

/// The source's elements and whether it is ordered by itself (list, zset).
fn elements(
    cache: &mut CacheHandle,
    key: &[u8],
) -> Result<(Vec<Vec<u8>>, Option<ValueKind>), CmdError> {
    let mut buf = Vec::new();
    let Some(kind) = cache.peek(key, |item| item.kind()) else {
        return Ok((Vec::new(), None));
    };
    if !matches!(kind, ValueKind::List | ValueKind::Set | ValueKind::ZSet) {
        return Err(CmdError::WrongType);
    }
    // Read whole (a paged collection with its pages).
    if !read_whole(cache, key, kind, &mut buf)? {
        return Ok((Vec::new(), None));
    }
    let packed = view(&buf, true)?;
    // A sorted set stores member, score pairs: its elements are the members.
    let step = if kind == ValueKind::ZSet { 2 } else { 1 };
    let all = packed.to_vec()?;
    Ok((
        all.into_iter().step_by(step).map(<[u8]>::to_vec).collect(),
        Some(kind),
    ))
}

/// Redis's lookupKeyByPattern: `#` is the element; otherwise the first `*`
/// is replaced by it, and `key->field` reads a hash field. None when the
/// pattern has no `*`, the key is missing or of another kind.
fn by_pattern(cache: &mut CacheHandle, pattern: &[u8], element: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(element.to_vec());
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let arrow = pattern[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|p| star + 1 + p)
        .filter(|&p| p + 2 < pattern.len());
    let key_end = arrow.unwrap_or(pattern.len());
    let mut key = Vec::with_capacity(key_end + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    let mut buf = Vec::new();
    let kind = cache.get(&key, |item| {
        buf.clear();
        item.write_value_to(&mut buf);
        item.kind()
    })?;
    if kind == ValueKind::Hash && citadel_collections::paged::is_paged(&buf) {
        read_whole(cache, &key, kind, &mut buf).ok()?;
    }
    match (arrow, kind) {
        (None, ValueKind::String) => Some(buf),
        (Some(at), ValueKind::Hash) => {
            let hash = citadel_collections::HashView::new(Packed::parse(&buf).ok()?).ok()?;
            hash.get(&pattern[at + 2..])
                .ok()
                .flatten()
                .map(<[u8]>::to_vec)
        }
        _ => None,
    }
}

struct Entry {
    element: Vec<u8>,
    score: f64,
    compare: Option<Vec<u8>>,
}

fn sort_generic(ctx: &mut Ctx<'_>, args: Args<'_>, read_only: bool) -> CmdResult {
    let o = parse(args, read_only, ctx.thread.cluster.is_some())?;
    let in_script = ctx.state.scripts.busy.slot(ctx.thread.index).is_running();
    let cache = &mut ctx.thread.cache;
    let (mut list, kind) = elements(cache, args.get(1))?;
    let mut dont_sort = o.by.is_some_and(|by| !by.contains(&b'*'));
    let mut alpha = o.alpha;
    let mut by = o.by;
    if dont_sort && kind == Some(ValueKind::Set) && (o.store.is_some() || in_script) {
        // A set has no order of its own: a stored result, or one a script
        // sees, is sorted anyway (as Redis, for replication's sake).
        (dont_sort, alpha, by) = (false, true, None);
    }
    let n = list.len() as i64;
    let (mut start, mut end) = match o.limit {
        Some((offset, count)) => {
            let start = offset.max(0);
            (start, if count < 0 { n - 1 } else { start + count - 1 })
        }
        None => (0, n - 1),
    };
    if start >= n {
        (start, end) = (n - 1, n - 2);
    }
    end = end.min(n - 1);
    if dont_sort && o.desc && matches!(kind, Some(ValueKind::List | ValueKind::ZSet)) {
        list.reverse();
    }
    let mut entries = Vec::with_capacity(list.len());
    for element in list {
        let mut entry = Entry {
            score: 0.0,
            compare: None,
            element,
        };
        if !dont_sort {
            let value = match by {
                Some(pattern) => by_pattern(cache, pattern, &entry.element),
                None => None,
            };
            if alpha {
                entry.compare = value;
            } else {
                let text = if by.is_some() {
                    value.as_deref()
                } else {
                    Some(&entry.element[..])
                };
                if let Some(text) = text {
                    entry.score = num::parse_f64(text).ok_or(CmdError::Static(
                        "ERR One or more scores can't be converted into double",
                    ))?;
                }
            }
        }
        entries.push(entry);
    }
    if !dont_sort {
        let by_pattern = by.is_some();
        entries.sort_by(|a, b| {
            let cmp = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.element.cmp(&b.element))
            } else if by_pattern {
                a.compare.cmp(&b.compare)
            } else {
                a.element.cmp(&b.element)
            };
            if o.desc {
                cmp.reverse()
            } else {
                cmp
            }
        });
    }
    let chosen = if start <= end && start >= 0 {
        &entries[start as usize..=end as usize]
    } else {
        &entries[..0]
    };
    let mut results: Vec<Option<Vec<u8>>> = Vec::new();
    for entry in chosen {
        if o.gets.is_empty() {
            results.push(Some(entry.element.clone()));
        }
        for pattern in &o.gets {
            results.push(by_pattern(cache, pattern, &entry.element));
        }
    }
    match o.store {
        None => {
            ctx.out.array(results.len());
            for r in &results {
                match r {
                    Some(v) => ctx.out.bulk(v),
                    None => ctx.out.null(),
                }
            }
        }
        Some(dest) => {
            let mut w = PackedWriter::default();
            results
                .iter()
                .for_each(|r| w.push(r.as_deref().unwrap_or_default()));
            let count = w.count();
            let value = w.finish();
            // The destination is replaced whatever it was, its TTL too.
            replace_whole(&mut ctx.thread.cache, dest, ValueKind::List, &value)?;
            ctx.out.int(count as i64);
        }
    }
    Ok(())
}

use crate::command::table::{c, CommandDef, KEY1};

const SORT_FLAGS: &[&str] = &["write", "denyoom", "movablekeys"];
const SORT_RO_FLAGS: &[&str] = &["readonly", "movablekeys"];

#[rustfmt::skip]
pub static COMMANDS: &[CommandDef] = &[
    c("sort", -2, SORT_FLAGS, KEY1, "generic", "1.0.0", "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.", sort).finding_keys(for_each_sort_key),
    c("sort_ro", -2, SORT_RO_FLAGS, KEY1, "generic", "7.0.0", "Returns the sorted elements of a list, a set, or a sorted set.", sort_ro),
];
