//! BITFIELD and BITFIELD_RO: integer fields of 1 to 64 bits (unsigned up
//! to 63) at any bit offset of a string, with Redis's overflow rules.

use citadel_resp::{num, Reply};

use super::args::Args;
use super::bits::{check_grow_to, parse_bit_offset};
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::value::{get_string, put_raw, read_into, string_item};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy)]
struct FieldType {
    signed: bool,
    bits: u32,
}

#[derive(Clone, Copy)]
enum Action {
    Get,
    Set(i64),
    IncrBy(i64),
}

#[derive(Clone, Copy)]
struct FieldOp {
    action: Action,
    field: FieldType,
    offset: u64,
    overflow: Overflow,
}

/// Redis's getBitfieldTypeFromArgument: `i1`..`i64` or `u1`..`u63`.
fn parse_type(arg: &[u8]) -> Result<FieldType, CmdError> {
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(CmdError::BitfieldType),
    };
    let max = if signed { 64 } else { 63 };
    match num::parse_i64(&arg[1..]) {
        Some(bits) if (1..=max).contains(&bits) => Ok(FieldType {
            signed,
            bits: bits as u32,
        }),
        _ => Err(CmdError::BitfieldType),
    }
}

/// Parses the operations in Redis's order (each error is the first one
/// Redis would report).
fn parse_ops(ctx: &Ctx<'_>, args: Args<'_>) -> Result<Vec<FieldOp>, CmdError> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let remaining = args.len() - j - 1;
        let word = args.get(j);
        let is = |name: &str| word.eq_ignore_ascii_case(name.as_bytes());
        let action_args = if is("get") && remaining >= 2 {
            2
        } else if (is("set") || is("incrby")) && remaining >= 3 {
            3
        } else if is("overflow") && remaining >= 1 {
            let kind = args.get(j + 1);
            overflow = [
                ("wrap", Overflow::Wrap),
                ("sat", Overflow::Sat),
                ("fail", Overflow::Fail),
            ]
            .into_iter()
            .find(|(name, _)| kind.eq_ignore_ascii_case(name.as_bytes()))
            .ok_or(CmdError::OverflowType)?
            .1;
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let field = parse_type(args.get(j + 1))?;
        let offset = parse_bit_offset(ctx, args.get(j + 2), Some(field.bits))?;
        let action = match action_args {
            2 => Action::Get,
            _ if is("set") => Action::Set(args.int(j + 3)?),
            _ => Action::IncrBy(args.int(j + 3)?),
        };
        ops.push(FieldOp {
            action,
            field,
            offset,
            overflow,
        });
        j += 1 + action_args;
    }
    Ok(ops)
}

/// The unsigned field of `bits` at bit `offset` of `buf` (which holds it).
fn get_bits(buf: &[u8], offset: u64, bits: u32) -> u64 {
    (offset..offset + u64::from(bits)).fold(0, |value, at| {
        let bit = (buf[(at >> 3) as usize] >> (7 - (at & 7))) & 1;
        (value << 1) | u64::from(bit)
    })
}

fn set_bits(buf: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..u64::from(bits) {
        let at = offset + j;
        let mask = 0x80u8 >> (at & 7);
        let byte = &mut buf[(at >> 3) as usize];
        if (value >> (u64::from(bits) - 1 - j)) & 1 == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// The field's value as Redis replies it (signed fields sign-extended).
fn get_field(buf: &[u8], offset: u64, field: FieldType) -> i64 {
    let raw = get_bits(buf, offset, field.bits);
    if field.signed && field.bits < 64 && raw & (1 << (field.bits - 1)) != 0 {
        (raw | (u64::MAX << field.bits)) as i64
    } else {
        raw as i64
    }
}

/// `value + incr` in the field's range: Ok(sum), or Err(what WRAP or SAT
/// makes of it) on overflow. Redis's check{Uns,S}ignedBitfieldOverflow,
/// down to their treatment of a SET value (incr 0) outside the range.
fn add_in_range(value: i64, incr: i64, field: FieldType, overflow: Overflow) -> Result<i64, i64> {
    let bits = field.bits;
    let (high, low) = if field.signed {
        let max = if bits == 64 {
            i64::MAX
        } else {
            (1i64 << (bits - 1)) - 1
        };
        let min = -max - 1;
        let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
        let min_incr = min.wrapping_sub(value);
        let high = value > max
            || (bits != 64 && incr > max_incr)
            || (value >= 0 && incr > 0 && incr > max_incr);
        let low = value < min
            || (bits != 64 && incr < min_incr)
            || (value < 0 && incr < 0 && incr < min_incr);
        (high.then_some(max), low.then_some(min))
    } else {
        let (value, max) = (value as u64, (1u64 << bits) - 1);
        let max_incr = max.wrapping_sub(value) as i64;
        let min_incr = (value as i64).wrapping_neg();
        let high = value > max || (incr > 0 && incr > max_incr);
        let low = !high && incr < 0 && incr < min_incr;
        (high.then_some(max as i64), low.then_some(0))
    };
    let Some(saturated) = high.or(low) else {
        return Ok(value.wrapping_add(incr));
    };
    if overflow == Overflow::Sat {
        return Err(saturated);
    }
    // WRAP (FAIL discards it): the sum truncated to the field, sign-extended
    // when signed.
    let sum = (value as u64).wrapping_add(incr as u64);
    let wrapped = if bits == 64 {
        sum
    } else if field.signed && sum & (1 << (bits - 1)) != 0 {
        sum | (u64::MAX << bits)
    } else {
        sum & !(u64::MAX << bits)
    };
    Err(wrapped as i64)
}

/// Runs one SET or INCRBY on `buf` and replies: the old value (SET), the
/// new one (INCRBY), or null when OVERFLOW FAIL refused the write.
/// Returns whether the field changed.
fn write_field(out: &mut Reply<'_>, buf: &mut [u8], op: &FieldOp) -> bool {
    let old = get_field(buf, op.offset, op.field);
    let (checked, reply_old) = match op.action {
        Action::Set(value) => (add_in_range(value, 0, op.field, op.overflow), true),
        Action::IncrBy(incr) => (add_in_range(old, incr, op.field, op.overflow), false),
        // Not a write: rewrites the same bits.
        Action::Get => (Ok(old), true),
    };
    if checked.is_err() && op.overflow == Overflow::Fail {
        out.null();
        return false;
    }
    let new = checked.unwrap_or_else(|limit| limit);
    set_bits(buf, op.offset, op.field.bits, new as u64);
    out.int(if reply_old { old } else { new });
    get_field(buf, op.offset, op.field) != old
}

/// A GET reads the 9 bytes that hold any field at its offset, zero-padded.
fn read_field(window: &[u8; 9], op: &FieldOp) -> i64 {
    get_field(window, op.offset & 7, op.field)
}

fn bitfield_common(ctx: &mut Ctx<'_>, args: Args<'_>, read_only_cmd: bool) -> CmdResult {
    let ops = parse_ops(ctx, args)?;
    let key = args.get(1);
    // The highest bit any write touches: the value grows to hold it first.
    let highest = ops
        .iter()
        .filter(|op| !matches!(op.action, Action::Get))
        .map(|op| op.offset + u64::from(op.field.bits) - 1)
        .max();
    let out = &mut ctx.out;
    let mark = out.buf.len();
    let Some(highest) = highest else {
        get_string(&mut ctx.thread.cache, key, |item| {
            out.buf.truncate(mark);
            out.array(ops.len());
            for op in &ops {
                let mut window = [0u8; 9];
                read_into(item, (op.offset >> 3) as usize, &mut window);
                out.int(read_field(&window, op));
            }
        })?;
        if out.buf.len() == mark {
            // A missing key reads as zeros.
            out.array(ops.len());
            ops.iter().for_each(|op| out.int(read_field(&[0; 9], op)));
        }
        return Ok(());
    };
    if read_only_cmd {
        return Err(CmdError::BitfieldReadOnly);
    }
    let needed = (highest >> 3) as usize + 1;
    check_grow_to(ctx, needed as u64)?;
    let out = &mut ctx.out;
    let written = ctx.thread.cache.update(&[key], |items, changes| {
        out.buf.truncate(mark);
        let mut changed = false;
        let mut value = Vec::new();
        if let Some(item) = string_item(items[0].as_ref())? {
            value.reserve_exact(item.value_len().max(needed));
            item.write_value_to(&mut value);
        }
        let old_len = value.len();
        value.resize(old_len.max(needed), 0);
        // A new key or a longer value is a change whatever the fields hold.
        changed |= old_len < needed;
        out.array(ops.len());
        for op in &ops {
            match op.action {
                Action::Get => {
                    let mut window = [0u8; 9];
                    let from = ((op.offset >> 3) as usize).min(value.len());
                    let have = (value.len() - from).min(9);
                    window[..have].copy_from_slice(&value[from..from + have]);
                    out.int(read_field(&window, op));
                }
                Action::Set(_) | Action::IncrBy(_) => changed |= write_field(out, &mut value, op),
            }
        }
        if changed {
            let expire = items[0].as_ref().and_then(|i| i.expire_at());
            put_raw(changes, 0, &[&value[..]], expire)?;
        }
        Ok::<_, CmdError>(changed)
    });
    match written {
        Ok(Ok(changed)) => {
            if !changed {
                ctx.thread.stats.unchanged_write();
            }
            Ok(())
        }
        Ok(Err(e)) => {
            out.buf.truncate(mark);
            Err(e)
        }
        Err(e) => {
            out.buf.truncate(mark);
            Err(e.into())
        }
    }
}

pub fn bitfield(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bitfield_common(ctx, args, false)
}

pub fn bitfield_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bitfield_common(ctx, args, true)
}

#[cfg(test)]
mod tests {
    use super::{add_in_range, get_field, set_bits, FieldType, Overflow};

    const U8: FieldType = FieldType {
        signed: false,
        bits: 8,
    };
    const I8: FieldType = FieldType {
        signed: true,
        bits: 8,
    };
    const I64: FieldType = FieldType {
        signed: true,
        bits: 64,
    };

    #[test]
    fn overflow_rules() {
        use Overflow::*;
        assert_eq!(add_in_range(250, 10, U8, Wrap), Err(4));
        assert_eq!(add_in_range(250, 10, U8, Sat), Err(255));
        assert_eq!(add_in_range(5, -10, U8, Sat), Err(0));
        assert_eq!(add_in_range(5, -10, U8, Wrap), Err(251));
        assert_eq!(add_in_range(-1, 0, U8, Wrap), Err(255));
        assert_eq!(add_in_range(-1, 0, U8, Sat), Err(255));
        assert_eq!(add_in_range(120, 10, I8, Wrap), Err(-126));
        assert_eq!(add_in_range(-120, -10, I8, Sat), Err(-128));
        assert_eq!(add_in_range(200, 0, I8, Wrap), Err(-56));
        assert_eq!(add_in_range(i64::MAX, 1, I64, Wrap), Err(i64::MIN));
        assert_eq!(add_in_range(i64::MAX, 1, I64, Sat), Err(i64::MAX));
        assert_eq!(add_in_range(100, 27, I8, Fail), Ok(127));
    }

    #[test]
    fn fields_cross_bytes() {
        let mut buf = [0u8; 3];
        set_bits(&mut buf, 5, 8, 0xab);
        assert_eq!(buf, [0b0000_0101, 0b0101_1000, 0]);
        assert_eq!(get_field(&buf, 5, U8), 0xab);
        assert_eq!(get_field(&buf, 5, I8), 0xab - 256);
    }
}
