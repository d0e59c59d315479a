//! OBJECT ENCODING of a collection: what Redis 7.0 reports for the same
//! value, which once past Redis's size limits stays in the big encoding
//! (a paged one is never read: `hashtable` or `skiplist`; a packed one
//! says so by its mark, `small_form`). Read with `peek`: like Redis's
//! OBJECT, it neither counts a hit nor bumps the key's access frequency.

use citadel_cache::ValueKind;
use citadel_collections::paged::is_paged;
use citadel_collections::Packed;

use super::small_form;
use super::value::load;
use crate::command::context::Ctx;
use crate::command::error::CmdError;

pub fn object_encoding(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    kind: ValueKind,
) -> Result<&'static str, CmdError> {
    if kind == ValueKind::List {
        // Redis 7.0 holds every list as a quicklist (of listpacks).
        return Ok("quicklist");
    }
    if kind == ValueKind::Stream {
        return Ok("stream");
    }
    let mut buf = std::mem::take(&mut ctx.conn.scratch);
    let cache = &mut ctx.thread.cache;
    let found = cache.peek(key, |item| load(Some(item), kind, &mut buf));
    let result = match found {
        // Paged only past Redis's listpack/intset limits (`shape.rs`),
        // and Redis never converts a hashtable or skiplist back: no read.
        // So is a packed one marked big (`small_form`): it was past them.
        Some(Ok(Some(_))) if is_paged(&buf) || small_form::is_big(&buf) => Ok(match kind {
            ValueKind::ZSet => "skiplist",
            _ => "hashtable",
        }),
        Some(Ok(Some(_))) => encoding_of(kind, Packed::parse(&buf)?),
        Some(Err(e)) => Err(e),
        // Gone meanwhile: what a missing collection would be.
        _ => encoding_of(kind, Packed::empty()),
    };
    buf.clear();
    ctx.conn.scratch = buf;
    result
}

/// A value not marked big: its content decides (a value stored before
/// the mark existed may be past the limits unmarked).
fn encoding_of(kind: ValueKind, packed: Packed<'_>) -> Result<&'static str, CmdError> {
    let small = small_form::fits(kind, packed)?;
    Ok(match kind {
        ValueKind::Hash if small => "listpack",
        ValueKind::Set if small => "intset",
        ValueKind::ZSet if small => "listpack",
        ValueKind::Hash | ValueKind::Set => "hashtable",
        ValueKind::ZSet => "skiplist",
        ValueKind::List => "quicklist",
        ValueKind::String => "raw",
        ValueKind::Stream => "stream",
        // Never a key (hidden from the keyspace): nothing to report.
        ValueKind::Page => return Err(CmdError::NoSuchKey),
    })
}
