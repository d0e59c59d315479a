//! HINCRBY and HINCRBYFLOAT: atomic read-modify-write of one field holding
//! a number as text (a missing field counts as 0; the key's TTL is kept).

use citadel_collections::linear_hash::entry_bytes;
use citadel_collections::{HashView, Packed};
use citadel_resp::ext_float::{self, ExtFloat};
use citadel_resp::num;

use super::super::linear::update_one;
use super::SHAPE;
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// Replaces `field` of the hash at `key` with what `next` makes of its
/// current value (text of the new value, and what to reply with).
fn update_field<T>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    field: &[u8],
    next: impl Fn(Option<&[u8]>) -> Result<(Vec<u8>, T), CmdError>,
) -> Result<T, CmdError> {
    // A number's text is short: room for one is enough to plan a split.
    let added_bytes = entry_bytes([field, &[0; 24][..]]);
    update_one(
        ctx,
        key,
        SHAPE,
        |root| root.pages_for([field], 1, added_bytes, 0),
        |value| {
            let hash = HashView::new(value.unwrap_or(Packed::empty()))?;
            let (text, result) = next(hash.get(field)?)?;
            let edited = hash.with_fields(&[(field, &text)], false)?;
            Ok((result, Some((edited.value, edited.fields))))
        },
        |table| {
            let current = table.get(field)?.map(|e| e[1].to_vec());
            let (text, result) = next(current.as_deref())?;
            table.put(&[field, &text], false)?;
            Ok(result)
        },
    )
}

/// HINCRBY key field increment: the new integer.
pub fn hincrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let delta = args.int(3)?;
    let new = update_field(ctx, args.get(1), args.get(2), |current| {
        let current = match current {
            None => 0,
            Some(text) => num::parse_i64(text).ok_or(CmdError::HashNotInteger)?,
        };
        let new = current.checked_add(delta).ok_or(CmdError::Overflow)?;
        let mut digits = [0u8; 21];
        Ok((num::fmt_i64(&mut digits, new).to_vec(), new))
    })?;
    ctx.out.int(new);
    Ok(())
}

/// HINCRBYFLOAT key field increment: the new value as a bulk string.
pub fn hincrbyfloat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let delta = ExtFloat::parse(args.get(3)).ok_or(CmdError::NotFloat)?;
    if !delta.is_finite() {
        return Err(CmdError::Static("ERR value is NaN or Infinity"));
    }
    let text = update_field(ctx, args.get(1), args.get(2), |current| {
        let current = match current {
            None => ExtFloat::ZERO,
            Some(text) => ExtFloat::parse(text).ok_or(CmdError::HashNotFloat)?,
        };
        let text = ext_float::human_sum(current, delta).ok_or(CmdError::NanOrInfinity)?;
        Ok((text.clone(), text))
    })?;
    ctx.out.bulk(&text);
    Ok(())
}
