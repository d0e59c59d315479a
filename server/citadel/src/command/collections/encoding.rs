//! OBJECT ENCODING of a collection: what Redis 7.0 reports for the same
//! value under its default size limits.

use citadel_cache::ValueKind;

use super::{hash, set};
use crate::command::context::Ctx;
use crate::command::error::CmdError;

pub fn object_encoding(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    kind: ValueKind,
) -> Result<&'static str, CmdError> {
    match kind {
        ValueKind::Hash => hash::object_encoding(ctx, key),
        ValueKind::Set => set::object_encoding(ctx, key),
        // Redis 7.0 holds every list as a quicklist (of listpacks).
        ValueKind::List => Ok("quicklist"),
        _ => Ok("listpack"),
    }
}
