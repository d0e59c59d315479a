//! Overlapping a pipeline's cache misses.
//!
//! With many commands in one receive buffer, executing them one by one pays
//! each key's index-bucket miss and item miss in turn. Before executing, the
//! session skims up to `AHEAD` whole commands with a second parser and asks
//! the cache to start loading every key's home bucket, then every matching
//! item, so the misses of the batch overlap (see `CacheHandle::prefetch_*`).
//! A buffer holding a single command is left alone: nothing to overlap.

use crate::thread::ThreadCtx;
use citadel_resp::parse::{Parsed, RequestParser};

const AHEAD: usize = 32;

/// Issues prefetches for the keys (first argument) of the commands at the
/// start of `input`.
pub fn prefetch_keys(
    ctx: &ThreadCtx,
    lookahead: &mut RequestParser,
    input: &[u8],
    max_bulk: usize,
) {
    let mut hashes = [0u64; AHEAD];
    let (mut n, mut pos) = (0, 0);
    lookahead.reset();
    while n < AHEAD && pos < input.len() {
        let buf = &input[pos..];
        let Parsed::Command { end, inline: false } = lookahead.parse(buf, max_bulk, true) else {
            break;
        };
        if n == 0 && pos + end == input.len() {
            return;
        }
        if let Some(key) = lookahead.args.get(1) {
            hashes[n] = ctx.cache.prefetch_bucket(&buf[key.clone()]);
            n += 1;
        }
        pos += end;
    }
    lookahead.reset();
    for &h in &hashes[..n] {
        ctx.cache.prefetch_item(h);
    }
}
