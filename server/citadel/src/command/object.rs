//! OBJECT ENCODING | FREQ | IDLETIME | REFCOUNT | HELP, answered for the
//! cache's representation as Redis would answer for the same value.
//!
//! As in Redis, the `maxmemory-policy` decides which of FREQ and IDLETIME
//! answers. Under an LFU policy FREQ answers Redis's logarithmic counter
//! for the key's accesses over the hot-key window (`crate::hotkeys`), at
//! least the frequency bits (0-7) that segment eviction keeps items by,
//! and IDLETIME is Redis's error. Under the others FREQ is Redis's error
//! and IDLETIME an estimate, as the engine keeps no access time: 0 when
//! the hot-key window saw the key read, else the seconds since its item's
//! segment was opened (the item is no older).

use citadel_cache::ValueKind;
use citadel_settings::server::MAXMEMORY_POLICY;

use super::args::Args;
use super::context::{reply_lines, Ctx};
use super::error::{CmdError, CmdResult};
use super::table::{c, keyless, CommandDef, SUB_KEY};

const G: &str = "generic";
const RO: &[&str] = &["readonly"];

#[rustfmt::skip]
pub static SUBCOMMANDS: &[CommandDef] = &[
    c("object|encoding", 3, RO, SUB_KEY, G, "2.2.3", "Returns the internal encoding of a Redis object.", encoding),
    c("object|freq", 3, RO, SUB_KEY, G, "4.0.0", "Returns the logarithmic access frequency counter of a Redis object.", freq),
    c("object|idletime", 3, RO, SUB_KEY, G, "2.2.3", "Returns the time since the last access to a Redis object.", idletime),
    c("object|refcount", 3, RO, SUB_KEY, G, "2.2.3", "Returns the reference count of a value of a key.", refcount),
    keyless("object|help", 2, &["loading", "stale"], G, "6.2.0", "Returns helpful text about the different subcommands.", help),
];

/// Redis's encoding of a string set to `value`: "int" for a canonical
/// 64-bit decimal, "embstr" up to 44 bytes, else "raw"; HyperLogLogs are
/// created raw whatever their size. (A string written raw, by APPEND,
/// SETRANGE, SETBIT, BITFIELD or BITOP, is "raw" whatever its content:
/// `ItemRef::is_raw_string`.)
pub fn string_encoding(value: &[u8]) -> &'static str {
    if value.len() >= 16 && value.starts_with(b"HYLL") {
        return "raw";
    }
    if value.len() <= 20 && is_canonical_i64(value) {
        "int"
    } else if value.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

/// As Redis's string2l: no sign but '-', no leading zeros, no spaces.
fn is_canonical_i64(v: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(v) else {
        return false;
    };
    match text.parse::<i64>() {
        Ok(n) => n.to_string() == text,
        Err(_) => false,
    }
}

/// What OBJECT ENCODING reads of an item.
struct Head {
    /// Up to 45 bytes of the value (enough to decide a string's encoding).
    bytes: Vec<u8>,
    len: usize,
    kind: ValueKind,
    /// Written raw (APPEND, SETRANGE ...): "raw" whatever the content.
    raw: bool,
}

fn value_head(ctx: &mut Ctx<'_>, key: &[u8]) -> Option<Head> {
    ctx.thread.cache.peek(key, |item| {
        let mut bytes = Vec::with_capacity(45);
        for piece in item.value_range(0, 45) {
            piece.append_to(&mut bytes);
        }
        Head {
            bytes,
            len: item.value_len(),
            kind: item.kind(),
            raw: item.is_raw_string(),
        }
    })
}

fn encoding(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    match value_head(ctx, args.get(2)) {
        None => ctx.out.null(),
        Some(Head { kind, .. }) if kind != ValueKind::String => {
            let enc = super::collections::encoding::object_encoding(ctx, args.get(2), kind)?;
            ctx.out.bulk(enc.as_bytes());
        }
        Some(Head {
            bytes: head,
            len,
            raw,
            ..
        }) => {
            let enc = if raw || (len > 44 && !head.starts_with(b"HYLL")) {
                "raw"
            } else {
                string_encoding(&head)
            };
            ctx.out.bulk(enc.as_bytes());
        }
    }
    Ok(())
}

/// The larger of the cache's frequency bits and Redis's logarithmic
/// counter for the key's accesses over the hot-key window (so hot keys
/// read as Redis would show them to `redis-cli --hotkeys`).
fn freq(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    match ctx.thread.cache.peek_with_freq(args.get(2), |_| ()) {
        None => ctx.out.null(),
        Some(_) if !lfu_policy(ctx) => {
            return Err(CmdError::Static(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
                 Please note that when switching between policies at runtime LRU and LFU data \
                 will take some time to adjust.",
            ))
        }
        Some(((), f)) => {
            let hits = ctx.state.hotkeys.hits(args.get(2));
            let counter = crate::hotkeys::lfu_counter(hits).max(f);
            ctx.out.int(i64::from(counter));
        }
    }
    Ok(())
}

fn idletime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let Some(stored_since) = ctx.thread.cache.peek_stored_since_ms(args.get(2)) else {
        ctx.out.null();
        return Ok(());
    };
    if lfu_policy(ctx) {
        return Err(CmdError::Static(
            "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that \
             when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ));
    }
    let idle_ms = if ctx.state.hotkeys.hits(args.get(2)) > 0 {
        0
    } else {
        ctx.thread.cache.now_ms().saturating_sub(stored_since)
    };
    ctx.out.int((idle_ms / 1000) as i64);
    Ok(())
}

/// Whether the policy in effect is an LFU one (Redis's MAXMEMORY_FLAG_LFU).
fn lfu_policy(ctx: &Ctx<'_>) -> bool {
    ctx.state.settings.get(&MAXMEMORY_POLICY).is_lfu()
}

/// Values are never shared between keys: always 1 (Redis too shares no
/// integers under an LFU policy).
fn refcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    match ctx.thread.cache.peek(args.get(2), |_| ()) {
        None => ctx.out.null(),
        Some(()) => ctx.out.int(1),
    }
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    reply_lines(
        &mut ctx.out,
        &[
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Prints this help.",
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::string_encoding;

    #[test]
    fn encodings_follow_redis() {
        assert_eq!(string_encoding(b"12345"), "int");
        assert_eq!(string_encoding(b"-9223372036854775808"), "int");
        assert_eq!(string_encoding(b"9223372036854775808"), "embstr");
        assert_eq!(string_encoding(b"007"), "embstr");
        assert_eq!(string_encoding(b"+1"), "embstr");
        assert_eq!(string_encoding(&[b'a'; 44]), "embstr");
        assert_eq!(string_encoding(&[b'a'; 45]), "raw");
    }
}
