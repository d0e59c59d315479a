//! The COMMAND INFO fields Citadel takes from Redis (acl_categories, tips,
//! key_specifications): their shape, shared by docs.rs and the generated
//! table (generated/cmd_info.rs), and their Redis 7.0 reply form.

use citadel_resp::Reply;

/// Where a key spec starts looking for keys.
pub enum Begin {
    /// At this argument index.
    Index(i64),
    /// After this keyword, searched from argument `startfrom` (negative:
    /// from the end, backwards).
    Keyword(&'static str, i64),
    Unknown,
}

/// How a key spec finds keys from where it begins.
pub enum Find {
    Range {
        lastkey: i64,
        keystep: i64,
        limit: i64,
    },
    Keynum {
        keynumidx: i64,
        firstkey: i64,
        keystep: i64,
    },
    Unknown,
}

/// One entry of `key_specifications`.
pub struct KeySpec {
    pub notes: Option<&'static str>,
    /// RW/RO/OW/RM, access/update/insert/delete, and the rest, in Redis's order.
    pub flags: &'static [&'static str],
    pub begin: Begin,
    pub find: Find,
}

/// The Redis-known part of one command's COMMAND INFO entry.
pub struct Info {
    pub acl: &'static [&'static str],
    pub tips: &'static [&'static str],
    pub key_specs: &'static [KeySpec],
}

/// A `{type, spec: {field: int, ...}}` map (begin_search, find_keys).
fn typed(out: &mut Reply<'_>, kind: &str, spec: &[(&str, i64)]) {
    out.map(2);
    out.bulk(b"type");
    out.bulk(kind.as_bytes());
    out.bulk(b"spec");
    out.map(spec.len());
    for (k, v) in spec {
        out.bulk(k.as_bytes());
        out.int(*v);
    }
}

/// One key spec map, as Redis 7.0's addReplyCommandKeySpecs writes it.
pub fn write_key_spec(out: &mut Reply<'_>, s: &KeySpec) {
    out.map(3 + usize::from(s.notes.is_some()));
    if let Some(notes) = s.notes {
        out.bulk(b"notes");
        out.bulk(notes.as_bytes());
    }
    out.bulk(b"flags");
    out.set(s.flags.len());
    s.flags.iter().for_each(|f| out.simple(f.as_bytes()));
    out.bulk(b"begin_search");
    match s.begin {
        Begin::Index(i) => typed(out, "index", &[("index", i)]),
        Begin::Keyword(word, from) => {
            out.map(2);
            out.bulk(b"type");
            out.bulk(b"keyword");
            out.bulk(b"spec");
            out.map(2);
            out.bulk(b"keyword");
            out.bulk(word.as_bytes());
            out.bulk(b"startfrom");
            out.int(from);
        }
        Begin::Unknown => typed(out, "unknown", &[]),
    }
    out.bulk(b"find_keys");
    match s.find {
        Find::Range {
            lastkey,
            keystep,
            limit,
        } => typed(
            out,
            "range",
            &[("lastkey", lastkey), ("keystep", keystep), ("limit", limit)],
        ),
        Find::Keynum {
            keynumidx,
            firstkey,
            keystep,
        } => typed(
            out,
            "keynum",
            &[
                ("keynumidx", keynumidx),
                ("firstkey", firstkey),
                ("keystep", keystep),
            ],
        ),
        Find::Unknown => typed(out, "unknown", &[]),
    }
}
