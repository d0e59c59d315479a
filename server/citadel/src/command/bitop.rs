//! BITOP AND|OR|XOR|NOT: a bitwise combination of strings, stored at the
//! destination key; sources are streamed through stack blocks.

use citadel_cache::ItemRef;

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::value::{put_raw, string_item};

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// Combines `src` (a source's bytes from `at`) into `out`.
fn combine(op: BitOp, out: &mut [u8], at: usize, src: &[u8]) {
    let dst = &mut out[at..at + src.len()];
    match op {
        BitOp::And => dst.iter_mut().zip(src).for_each(|(d, s)| *d &= s),
        BitOp::Or => dst.iter_mut().zip(src).for_each(|(d, s)| *d |= s),
        BitOp::Xor => dst.iter_mut().zip(src).for_each(|(d, s)| *d ^= s),
        BitOp::Not => dst.iter_mut().zip(src).for_each(|(d, s)| *d = !s),
    }
}

/// The result of `op` over `sources` (missing keys are empty strings),
/// as long as the longest source.
fn bitop_result(op: BitOp, sources: &[Option<ItemRef<'_>>]) -> Vec<u8> {
    let len = |s: &Option<ItemRef<'_>>| s.as_ref().map_or(0, |i| i.value_len());
    let max_len = sources.iter().map(len).max().unwrap_or(0);
    let mut out = vec![0u8; max_len];
    for (n, source) in sources.iter().enumerate() {
        // The first source is copied as is (or negated); a shorter source
        // is zero-padded, which only AND notices.
        let op = match (n, op) {
            (0, BitOp::Not) => BitOp::Not,
            (0, _) => BitOp::Or,
            _ => op,
        };
        let mut at = 0;
        if let Some(item) = source {
            for piece in item.chunks() {
                piece.for_each_block(|block| {
                    combine(op, &mut out, at, block);
                    at += block.len();
                });
            }
        }
        match op {
            BitOp::And => out[at..].fill(0),
            BitOp::Not => out[at..].fill(0xff),
            BitOp::Or | BitOp::Xor => {}
        }
    }
    out
}

/// Replaces the destination (dropping its TTL, as Redis's setKey) or
/// deletes it when every source is empty; replies with the result length.
pub fn bitop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let name = args.get(1);
    let op = [
        ("and", BitOp::And),
        ("or", BitOp::Or),
        ("xor", BitOp::Xor),
        ("not", BitOp::Not),
    ]
    .into_iter()
    .find(|(word, _)| name.eq_ignore_ascii_case(word.as_bytes()))
    .ok_or(CmdError::Syntax)?
    .1;
    if op == BitOp::Not && args.len() != 4 {
        return Err(CmdError::BitopNotArity);
    }
    // Destination first, then the sources.
    let keys: Vec<&[u8]> = args.iter().skip(2).collect();
    let len = ctx.thread.cache.update(&keys, |items, changes| {
        for source in &items[1..] {
            string_item(source.as_ref())?;
        }
        let result = bitop_result(op, &items[1..]);
        if result.is_empty() {
            if items[0].is_some() {
                changes.delete(0);
            }
        } else {
            put_raw(changes, 0, &[&result[..]], None)?;
        }
        Ok::<_, CmdError>(result.len())
    })??;
    ctx.out.int(len as i64);
    Ok(())
}
