//! HyperLogLog commands: PFADD PFCOUNT PFMERGE (and PFSELFTEST) over Redis's HLL string
//! encoding (see `hll/sketch.rs`), so values move between Citadel and Redis
//! with GET and SET and read the same.

mod debug;
mod estimate;
mod selftest;
mod sketch;

use citadel_cache::ItemRef;
pub use debug::pfdebug;

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::value::{read_into, string_item};
use estimate::{cardinality, REGISTERS};
use sketch::{
    cached_cardinality, histogram, is_dense, is_valid_header, merge_max, raw_histogram, Corrupt,
    Sketch, HEADER_LEN,
};

impl From<Corrupt> for CmdError {
    fn from(_: Corrupt) -> Self {
        CmdError::CorruptHll
    }
}

/// The header of an HLL value; any other string is WRONGTYPE to PF*.
fn hll_header(item: &ItemRef<'_>) -> Result<[u8; HEADER_LEN], CmdError> {
    string_item(Some(item))?;
    let mut header = [0u8; HEADER_LEN];
    read_into(item, 0, &mut header);
    if is_valid_header(&header, item.value_len()) {
        Ok(header)
    } else {
        Err(CmdError::NotHll)
    }
}

/// A copy of an HLL value to edit.
fn hll_sketch(item: &ItemRef<'_>) -> Result<Sketch, CmdError> {
    hll_header(item)?;
    let mut bytes = Vec::with_capacity(item.value_len());
    item.write_value_to(&mut bytes);
    Ok(Sketch { bytes })
}

/// Replies 1 when a register grew or the key was created. As Redis edits
/// in place, registers raised before a corrupt part are kept.
pub fn pfadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let elements = args.from(2);
    let updated = ctx.thread.cache.update(&[args.get(1)], |items, changes| {
        let (mut sketch, mut updated) = match &items[0] {
            None => (Sketch::empty(), true),
            Some(item) => (hll_sketch(item)?, false),
        };
        let mut outcome = Ok(());
        for element in elements.iter() {
            match sketch.add(element) {
                Ok(grew) => updated |= grew,
                Err(corrupt) => {
                    outcome = Err(CmdError::from(corrupt));
                    break;
                }
            }
        }
        if updated {
            if outcome.is_ok() {
                sketch.invalidate_cache();
            }
            let expire = items[0].as_ref().and_then(|i| i.expire_at());
            changes.put(0, &[&sketch.bytes[..]], expire)?;
        }
        outcome.map(|()| updated)
    })??;
    ctx.out.int(i64::from(updated));
    Ok(())
}

/// One key: the cached cardinality, or a fresh count that is cached in the
/// value (a write, as in Redis). Several keys: the count of their union.
pub fn pfcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let count = if args.len() > 2 {
        count_union(ctx, args)?
    } else {
        count_one(ctx, args.get(1))?
    };
    ctx.out.int(count as i64);
    Ok(())
}

fn count_one(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<u64, CmdError> {
    ctx.thread.cache.update(&[key], |items, changes| {
        let Some(item) = &items[0] else {
            return Ok(0);
        };
        if let Some(count) = cached_cardinality(&hll_header(item)?) {
            return Ok(count);
        }
        let mut sketch = hll_sketch(item)?;
        let count = cardinality(&histogram(&sketch.bytes)?);
        sketch.set_cached_cardinality(count);
        changes.put(0, &[&sketch.bytes[..]], item.expire_at())?;
        Ok(count)
    })?
}

/// Raises `max` to every existing key's registers, in key order (the first
/// invalid key decides the error); true when some input is dense.
fn merge_keys(items: &[Option<ItemRef<'_>>], max: &mut [u8; REGISTERS]) -> Result<bool, CmdError> {
    let mut any_dense = false;
    let mut value = Vec::new();
    for item in items.iter().flatten() {
        any_dense |= is_dense(&hll_header(item)?);
        value.clear();
        item.write_value_to(&mut value);
        merge_max(&value, max)?;
    }
    Ok(any_dense)
}

/// Read-only: the update writes nothing and only validates its snapshot,
/// so the union is of one consistent state of all the keys.
fn count_union(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<u64, CmdError> {
    let keys: Vec<&[u8]> = args.iter().skip(1).collect();
    ctx.thread.cache.update(&keys, |items, _| {
        let mut max = [0u8; REGISTERS];
        merge_keys(items, &mut max)?;
        Ok(cardinality(&raw_histogram(&max)))
    })?
}

/// The destination is also a source; it turns dense when any input is,
/// then takes each register's maximum one by one, as Redis does.
pub fn pfmerge(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let keys: Vec<&[u8]> = args.iter().skip(1).collect();
    ctx.thread.cache.update(&keys, |items, changes| {
        let mut max = [0u8; REGISTERS];
        let any_dense = merge_keys(items, &mut max)?;
        let mut sketch = match &items[0] {
            Some(item) => hll_sketch(item)?,
            None => Sketch::empty(),
        };
        if any_dense {
            sketch.make_dense()?;
        }
        for (index, &value) in max.iter().enumerate().filter(|(_, &v)| v != 0) {
            // Redis ignores a failure here too (the inputs were checked).
            let _ = sketch.set_register(index, value);
        }
        sketch.invalidate_cache();
        let expire = items[0].as_ref().and_then(|i| i.expire_at());
        changes.put(0, &[&sketch.bytes[..]], expire)?;
        Ok::<_, CmdError>(())
    })??;
    ctx.out.ok();
    Ok(())
}

/// PFSELFTEST: OK, or Redis's TESTFAILED error (`hll/selftest.rs`).
pub fn pfselftest(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    selftest::run().map_err(|failure| CmdError::Text(failure.text()))?;
    ctx.out.ok();
    Ok(())
}
