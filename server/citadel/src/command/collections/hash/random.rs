//! HRANDFIELD key [count [WITHVALUES]], as Redis 7.0 answers it: distinct
//! fields in stored order for a positive count, independent draws in
//! random order for a negative one.

use super::SHAPE;
use crate::command::args::Args;
use crate::command::collections::linear::{distinct_indexes, random_below, sample_pool};
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// Negative counts past this would build a reply of gigabytes: refused.
const MAX_DRAWS: u64 = 1 << 24;

pub fn hrandfield(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() == 2 {
        let pool = sample_pool(ctx, args.get(1), SHAPE, 1)?;
        match pool.get(random_below(pool.len())) {
            Some(entry) => ctx.out.bulk(&entry[0]),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    let count = args.int(2)?;
    if count == i64::MIN {
        return Err(CmdError::Static(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    let with_values = match args.len() {
        3 => false,
        4 if args.is(3, "withvalues") => true,
        _ => return Err(CmdError::Syntax),
    };
    let repeats = count < 0;
    if (with_values && count.unsigned_abs() > (i64::MAX / 2) as u64)
        || (repeats && count.unsigned_abs() > MAX_DRAWS)
    {
        return Err(CmdError::Static("ERR value is out of range"));
    }
    let pairs = sample_pool(ctx, args.get(1), SHAPE, count.unsigned_abs())?;
    let out = &mut ctx.out;
    let picks: Vec<usize> = if pairs.is_empty() || count == 0 {
        Vec::new()
    } else if repeats {
        (0..count.unsigned_abs())
            .map(|_| random_below(pairs.len()))
            .collect()
    } else if count as u64 >= pairs.len() as u64 {
        (0..pairs.len()).collect()
    } else {
        distinct_indexes(count as usize, pairs.len())
    };
    let resp3 = out.resp3;
    out.array(if with_values && !resp3 {
        2 * picks.len()
    } else {
        picks.len()
    });
    for i in picks {
        let (field, value) = (&pairs[i][0], &pairs[i][1]);
        if with_values && resp3 {
            out.array(2);
        }
        out.bulk(field);
        if with_values {
            out.bulk(value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_indexes_are_distinct_sorted_and_counted() {
        for (count, len) in [(1, 1), (3, 10), (9, 10), (50, 51)] {
            let picked = distinct_indexes(count, len);
            assert_eq!(picked.len(), count);
            assert!(picked.windows(2).all(|w| w[0] < w[1]));
            assert!(picked.iter().all(|&i| i < len));
        }
    }
}
