//! HSCAN key cursor [MATCH pattern] [COUNT count]. A hash small enough to
//! be a listpack in Redis comes back whole in stored order with cursor 0,
//! as Redis does. A bigger one is walked in order of its fields' hashes:
//! the cursor is the next hash to visit, so a field present for the whole
//! scan is returned exactly once, however the hash changes between calls.

use xxhash_rust::xxh3::xxh3_64;

use super::{is_listpack, with_hash};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::CmdResult;
use crate::command::scan::{parse_cursor, parse_opts};
use crate::glob::glob_match;

/// A field's place in the walk: 1 ..= 2^63, so cursor 0 is the start.
fn position(field: &[u8]) -> u64 {
    (xxh3_64(field) >> 1) + 1
}

pub fn hscan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cursor = parse_cursor(args.get(2))?;
    let options = args.from(3);
    with_hash(ctx, args.get(1), |out, hash| {
        let opts = if hash.is_empty() {
            None
        } else {
            Some(parse_opts(options, false)?)
        };
        let pairs = hash.pairs().collect::<Result<Vec<_>, _>>()?;
        let (mut chosen, next) = match &opts {
            None => (Vec::new(), 0),
            Some(_) if is_listpack(&hash)? => (pairs, 0),
            Some(opts) => {
                let mut ahead: Vec<(u64, &[u8], &[u8])> = pairs
                    .into_iter()
                    .map(|(f, v)| (position(f), f, v))
                    .filter(|(p, _, _)| *p >= cursor)
                    .collect();
                ahead.sort_unstable_by_key(|(p, _, _)| *p);
                // Never split fields of one position between two calls.
                let mut end = opts.count.min(ahead.len());
                while end > 0 && end < ahead.len() && ahead[end].0 == ahead[end - 1].0 {
                    end += 1;
                }
                let next = ahead.get(end).map_or(0, |(p, _, _)| *p);
                ahead.truncate(end);
                (ahead.into_iter().map(|(_, f, v)| (f, v)).collect(), next)
            }
        };
        if let Some(pattern) = opts.as_ref().and_then(|o| o.pattern) {
            chosen.retain(|(f, _)| glob_match(pattern, f));
        }
        out.array(2);
        out.bulk_u64(next);
        out.array(2 * chosen.len());
        for (field, value) in chosen {
            out.bulk(field);
            out.bulk(value);
        }
        Ok(())
    })
}
