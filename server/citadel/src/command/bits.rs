//! Bitmap commands on string values: SETBIT GETBIT BITCOUNT BITPOS, with
//! Redis 7.0's argument order, index arithmetic and replies (BITOP is in
//! `bitop`, BITFIELD in `bitfield`). Reads stream the value through stack
//! blocks; writes copy only what changes.

use citadel_cache::ItemRef;

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::ranges::overwrite;
use super::value::{get_string, read_into, string_item};

/// Redis's getBitOffsetFromArgument: a bit offset, or with `field_bits`
/// (BITFIELD) also `#N`, meaning N fields of that width. Offsets whose
/// byte lies at or past proto-max-bulk-len are refused before anything is
/// allocated.
pub(super) fn parse_bit_offset(
    ctx: &Ctx<'_>,
    arg: &[u8],
    field_bits: Option<u32>,
) -> Result<u64, CmdError> {
    let (digits, scale) = match (arg.first(), field_bits) {
        (Some(b'#'), Some(bits)) => (&arg[1..], i64::from(bits)),
        _ => (arg, 1),
    };
    let offset = citadel_resp::num::parse_i64(digits)
        .ok_or(CmdError::BitOffset)?
        .wrapping_mul(scale);
    if offset < 0 || (offset >> 3) as u64 >= ctx.state.limits.proto_max_bulk_len as u64 {
        return Err(CmdError::BitOffset);
    }
    Ok(offset as u64)
}

/// Refuses a write that would grow the value past max-value-size (Redis's
/// limit is proto-max-bulk-len, which Citadel's values never reach).
pub(super) fn check_grow_to(ctx: &Ctx<'_>, len: u64) -> Result<(), CmdError> {
    let max = ctx.state.cache.max_value_size();
    if len > max {
        return Err(CmdError::ValueTooLarge { len, max });
    }
    Ok(())
}

/// The byte at `index` (0 past the end).
fn byte_at(item: &ItemRef<'_>, index: usize) -> u8 {
    let mut byte = [0u8];
    read_into(item, index, &mut byte);
    byte[0]
}

pub fn setbit(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let offset = parse_bit_offset(ctx, args.get(2), None)?;
    let on = match args.int(3) {
        Ok(v @ 0..=1) => v == 1,
        _ => return Err(CmdError::BitValue),
    };
    let index = (offset >> 3) as usize;
    let mask = 0x80u8 >> (offset & 7);
    check_grow_to(ctx, index as u64 + 1)?;
    let (was_set, changed) = ctx.thread.cache.update(&[args.get(1)], |items, changes| {
        let item = string_item(items[0].as_ref())?;
        let old = item.map_or(0, |i| byte_at(i, index));
        let new = if on { old | mask } else { old & !mask };
        let grows = item.is_none_or(|i| i.value_len() <= index);
        let changed = grows || new != old;
        if changed {
            overwrite(changes, item, index, &[new])?;
        }
        Ok::<_, CmdError>((old & mask != 0, changed))
    })??;
    if !changed {
        ctx.thread.stats.unchanged_write();
    }
    ctx.out.int(i64::from(was_set));
    Ok(())
}

pub fn getbit(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let offset = parse_bit_offset(ctx, args.get(2), None)?;
    let mask = 0x80u8 >> (offset & 7);
    let set = get_string(&mut ctx.thread.cache, args.get(1), |item| {
        byte_at(item, (offset >> 3) as usize) & mask != 0
    })?;
    ctx.out.int(i64::from(set.unwrap_or(false)));
    Ok(())
}

/// A BITCOUNT / BITPOS range as given: start, end, and whether in bits.
#[derive(Clone, Copy)]
struct RangeArg {
    start: i64,
    end: i64,
    in_bits: bool,
}

/// A non-empty range of whole bytes, plus the bits of its first and last
/// byte that lie outside a BIT range (Redis's "negative masks").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ByteSpan {
    first: usize,
    last: usize,
    first_outside: u8,
    last_outside: u8,
}

/// Redis's index arithmetic over a value of `len` bytes; None: empty.
fn resolve(range: RangeArg, len: usize) -> Option<ByteSpan> {
    let total = if range.in_bits {
        (len as i64) << 3
    } else {
        len as i64
    };
    let wrap = |i: i64| if i < 0 { (total + i).max(0) } else { i };
    let (start, end) = (wrap(range.start), wrap(range.end).min(total - 1));
    if start > end {
        return None;
    }
    if !range.in_bits {
        return Some(ByteSpan {
            first: start as usize,
            last: end as usize,
            first_outside: 0,
            last_outside: 0,
        });
    }
    Some(ByteSpan {
        first: (start >> 3) as usize,
        last: (end >> 3) as usize,
        first_outside: !(0xffu8 >> (start & 7)),
        last_outside: (1u8 << (7 - (end & 7))) - 1,
    })
}

/// Parses the BYTE|BIT word.
fn parse_unit(arg: &[u8]) -> Result<bool, CmdError> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// BITCOUNT's arguments after the key; None: the whole value.
fn parse_count_range(args: Args<'_>) -> Result<Option<RangeArg>, CmdError> {
    match args.len() {
        2 => Ok(None),
        4 | 5 => {
            let (start, end) = (args.int(2)?, args.int(3)?);
            let in_bits = args.len() == 5 && parse_unit(args.get(4))?;
            Ok(Some(RangeArg {
                start,
                end,
                in_bits,
            }))
        }
        _ => Err(CmdError::Syntax),
    }
}

/// Set bits in `len` bytes of the value from `start`.
///
/// With POPCNT (the workspace builds for x86-64-v2: `.cargo/config.toml`)
/// it counts straight from the region's word loads, one POPCNT a word:
/// copying the value out through a stack buffer first was 38% of the
/// server's CPU per BITCOUNT of 256 KiB. Without it a word's `count_ones`
/// is a dozen instructions, and counting a copied block, which vectorizes,
/// is cheaper.
fn popcount(item: &ItemRef<'_>, start: usize, len: usize) -> u64 {
    let mut count = 0u64;
    for piece in item.value_range(start, len) {
        if cfg!(target_feature = "popcnt") {
            piece.for_each_word(|word| count += u64::from(word.count_ones()));
        } else {
            piece.for_each_block(|block| count += ones(block));
        }
    }
    count
}

/// Set bits in `bytes`, eight at a time: a byte's `count_ones` widened to
/// a u64 sum does not vectorize (4.5x Redis's CPU per BITCOUNT of 64 KiB);
/// a word's does.
fn ones(bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let whole: u64 = (&mut words)
        .map(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")).count_ones() as u64)
        .sum();
    let tail: u64 = words
        .remainder()
        .iter()
        .map(|b| u64::from(b.count_ones()))
        .sum();
    whole + tail
}

fn count_bits(item: &ItemRef<'_>, range: Option<RangeArg>) -> i64 {
    let whole = RangeArg {
        start: 0,
        end: -1,
        in_bits: false,
    };
    let range = range.unwrap_or(whole);
    // Redis 7.0 counts nothing between two negative indexes that cross
    // (before clamping, which would make -6 -7 of a short value byte 0);
    // BITPOS has no such rule.
    if range.start < 0 && range.end < 0 && range.start > range.end {
        return 0;
    }
    let Some(span) = resolve(range, item.value_len()) else {
        return 0;
    };
    let mut count = popcount(item, span.first, span.last - span.first + 1);
    count -= u64::from((byte_at(item, span.first) & span.first_outside).count_ones());
    count -= u64::from((byte_at(item, span.last) & span.last_outside).count_ones());
    count as i64
}

/// A missing key counts 0 before its arguments are even parsed (Redis 7.0).
pub fn bitcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let range = parse_count_range(args);
    let found = get_string(&mut ctx.thread.cache, args.get(1), |item| {
        range.as_ref().ok().map(|range| count_bits(item, *range))
    })?;
    let count = match found {
        None => 0,
        Some(Some(count)) => count,
        Some(None) => return Err(range.err().unwrap_or(CmdError::Syntax)),
    };
    ctx.out.int(count);
    Ok(())
}

/// BITPOS's arguments after the bit: (range, whether an end was given).
fn parse_pos_range(args: Args<'_>) -> Result<(Option<RangeArg>, bool), CmdError> {
    if args.len() == 3 {
        return Ok((None, false));
    }
    if args.len() > 6 {
        return Err(CmdError::Syntax);
    }
    let start = args.int(3)?;
    let in_bits = args.len() == 6 && parse_unit(args.get(5))?;
    let end_given = args.len() >= 5;
    let end = if end_given { args.int(4)? } else { -1 };
    Ok((
        Some(RangeArg {
            start,
            end,
            in_bits,
        }),
        end_given,
    ))
}

/// Redis's redisBitpos over `len` bytes of the value from `start`: the
/// first `bit`'s position, relative to `start`; not found: -1 for a 1,
/// `len * 8` for a 0 (the value continues with zeros). Searched in place
/// from the region's word loads, stopping at the first hit (copying 512-byte
/// blocks out went on to the value's end).
fn first_bit(item: &ItemRef<'_>, start: usize, len: usize, bit: bool) -> i64 {
    let skip = if bit { 0x00 } else { 0xff };
    let mut at = 0usize;
    for piece in item.value_range(start, len) {
        if let Some((i, byte)) = piece.first_byte_not(skip) {
            let b = if bit { byte } else { !byte };
            return ((at + i) as i64) * 8 + i64::from(b.leading_zeros());
        }
        at += piece.len();
    }
    if bit {
        -1
    } else {
        len as i64 * 8
    }
}

/// The first `bit` in one byte whose `outside` bits are forced to not match.
fn first_bit_in_byte(byte: u8, outside: u8, bit: bool) -> i64 {
    let byte = if bit { byte & !outside } else { byte | outside };
    let b = if bit { byte } else { !byte };
    if b == 0 {
        if bit {
            -1
        } else {
            8
        }
    } else {
        i64::from(b.leading_zeros())
    }
}

/// Redis 7.0's bitposCommand once the key exists: the edge bytes of a BIT
/// range are searched alone, the whole bytes between them in one pass.
fn find_bit(item: &ItemRef<'_>, bit: bool, range: Option<RangeArg>, end_given: bool) -> i64 {
    let whole = RangeArg {
        start: 0,
        end: -1,
        in_bits: false,
    };
    let Some(span) = resolve(range.unwrap_or(whole), item.value_len()) else {
        return -1;
    };
    let (mut start, mut bytes) = (span.first, span.last - span.first + 1);
    let pos = 'found: {
        if span.first_outside != 0 {
            let mut outside = span.first_outside;
            if bytes == 1 {
                outside |= span.last_outside;
            }
            let pos = first_bit_in_byte(byte_at(item, start), outside, bit);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'found pos;
            }
            start += 1;
            bytes -= 1;
        }
        let whole_bytes = bytes - usize::from(span.last_outside != 0);
        if whole_bytes > 0 {
            let pos = first_bit(item, start, whole_bytes, bit);
            if bytes == whole_bytes || (pos != -1 && pos != whole_bytes as i64 * 8) {
                break 'found pos;
            }
            start += whole_bytes;
            bytes -= whole_bytes;
        }
        first_bit_in_byte(byte_at(item, span.last), span.last_outside, bit)
    };
    // A 0 found just past an explicit end is outside the range.
    if end_given && !bit && pos == (bytes as i64) << 3 {
        return -1;
    }
    if pos == -1 {
        -1
    } else {
        pos + ((start as i64) << 3)
    }
}

pub fn bitpos(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let bit = match args.int(2)? {
        b @ 0..=1 => b == 1,
        _ => return Err(CmdError::BitArgument),
    };
    let range = parse_pos_range(args);
    let found = get_string(&mut ctx.thread.cache, args.get(1), |item| {
        range
            .as_ref()
            .ok()
            .map(|(range, end_given)| find_bit(item, bit, *range, *end_given))
    })?;
    let pos = match found {
        // A missing key is an endless run of zeros.
        None => {
            if bit {
                -1
            } else {
                0
            }
        }
        Some(Some(pos)) => pos,
        Some(None) => return Err(range.err().unwrap_or(CmdError::Syntax)),
    };
    ctx.out.int(pos);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{first_bit_in_byte, ones, resolve, ByteSpan, RangeArg};

    fn span(first: usize, last: usize, first_outside: u8, last_outside: u8) -> ByteSpan {
        ByteSpan {
            first,
            last,
            first_outside,
            last_outside,
        }
    }

    #[test]
    fn range_arithmetic() {
        let bytes = |start, end| RangeArg {
            start,
            end,
            in_bits: false,
        };
        let bits = |start, end| RangeArg {
            start,
            end,
            in_bits: true,
        };
        assert_eq!(resolve(bytes(0, -1), 4), Some(span(0, 3, 0, 0)));
        assert_eq!(resolve(bytes(-2, 100), 4), Some(span(2, 3, 0, 0)));
        assert_eq!(resolve(bytes(3, 1), 4), None);
        assert_eq!(resolve(bytes(0, -1), 0), None);
        assert_eq!(resolve(bits(3, 12), 4), Some(span(0, 1, 0xe0, 0x07)));
        assert_eq!(resolve(bits(8, 15), 4), Some(span(1, 1, 0, 0)));
        assert_eq!(resolve(bits(-1, -1), 2), Some(span(1, 1, 0xfe, 0)));
    }

    #[test]
    fn bit_in_one_byte() {
        assert_eq!(first_bit_in_byte(0b0010_0000, 0, true), 2);
        assert_eq!(first_bit_in_byte(0b1010_0000, 0x80, true), 2);
        assert_eq!(first_bit_in_byte(0, 0, true), -1);
        assert_eq!(first_bit_in_byte(0xff, 0, false), 8);
        assert_eq!(first_bit_in_byte(0x7f, 0, false), 0);
        assert_eq!(first_bit_in_byte(0x7f, 0x80, false), 8);
    }

    #[test]
    fn ones_counts_every_byte_whatever_the_length() {
        let bytes: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for len in [0, 1, 7, 8, 9, 63, 64, 65, 999, 1000] {
            let slow: u64 = bytes[..len].iter().map(|b| u64::from(b.count_ones())).sum();
            assert_eq!(ones(&bytes[..len]), slow, "{len}");
        }
    }
}
