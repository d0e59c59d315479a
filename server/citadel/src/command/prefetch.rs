//! Overlapping a pipeline's cache misses, and parsing each command once.
//!
//! With many commands in one receive buffer, executing them one by one pays
//! each key's index-bucket miss and item miss in turn. Before executing, the
//! session skims up to `AHEAD` whole commands and asks the cache to start
//! loading every key's home bucket, then every matching item, so the misses of
//! the batch overlap (see `CacheHandle::prefetch_*`). A buffer holding a single
//! command is not prefetched: nothing to overlap.
//!
//! The skim keeps what it parsed (each command's length and argument ranges,
//! and its key's hash), and the session executes those commands from it
//! instead of parsing them a second time (`Skim::take`); the batched GET/SET
//! path looks their keys up with that hash instead of hashing them again.

use std::ops::Range;

use crate::thread::ThreadCtx;
use citadel_cache::KeyHash;
use citadel_resp::parse::{Parsed, RequestParser};

/// Commands skimmed at most: the longest run of the fast path.
pub const AHEAD: usize = 32;

/// One skimmed command: where it starts in the input, its length, where
/// its arguments (ranges relative to its start) lie in the parser's
/// `args`, and the hash of its first argument after the name (its key,
/// for most commands).
struct Skimmed {
    start: usize,
    len: usize,
    args: Range<usize>,
    key_hash: Option<KeyHash>,
}

/// The commands skimmed from the start of one input buffer.
#[derive(Default)]
pub struct Skim {
    /// Its `args` hold every skimmed command's ranges, one after another
    /// (`RequestParser::parse_appending`).
    parser: RequestParser,
    commands: Vec<Skimmed>,
    next: usize,
}

impl Skim {
    /// Parses up to `AHEAD` whole commands at the start of `input` (with the
    /// session's limits) and issues prefetches for their keys (first argument).
    pub fn prefetch_keys(&mut self, ctx: &ThreadCtx, input: &[u8], max_bulk: usize, authed: bool) {
        let mut pos = 0;
        self.parser.args.clear();
        self.commands.clear();
        self.next = 0;
        self.parser.reset();
        while self.commands.len() < AHEAD && pos < input.len() {
            let buf = &input[pos..];
            let first = self.parser.args.len();
            let Some(Parsed::Command { end, .. }) =
                self.parser.parse_appending(buf, max_bulk, authed)
            else {
                break;
            };
            let args = first..self.parser.args.len();
            if pos + end == input.len() && self.commands.is_empty() {
                self.commands.push(Skimmed {
                    start: pos,
                    len: end,
                    args,
                    key_hash: None,
                });
                return;
            }
            self.commands.push(Skimmed {
                start: pos,
                len: end,
                args,
                key_hash: None,
            });
            pos += end;
        }
        // An incomplete or bad command ends the skim; the session's own parser
        // reads it.
        self.parser.reset();
        // Hashed and prefetched in a loop of their own, not as each command
        // is parsed: a prefetch that misses the TLB holds up retirement
        // until its page walk is done, and only a short loop keeps enough
        // of the next keys' prefetches in flight behind it for their walks
        // to overlap.
        for c in &mut self.commands {
            if c.args.len() > 1 {
                let key = &self.parser.args[c.args.start + 1];
                let key = &input[c.start + key.start..c.start + key.end];
                c.key_hash = Some(ctx.cache.prefetch_key(key));
            }
        }
        for c in &self.commands {
            if let Some(h) = c.key_hash {
                ctx.cache.prefetch_item(h.into());
            }
        }
    }

    /// Forgets the last skim (a new input is not skimmed).
    pub fn clear(&mut self) {
        self.commands.clear();
        self.next = 0;
    }

    /// The next skimmed command if it starts at `pos` of the input: its length
    /// and argument ranges (relative to `pos`).
    #[inline]
    pub fn take(&mut self, pos: usize) -> Option<(usize, &[Range<usize>])> {
        let (len, args) = self.next_at(pos)?;
        self.next += 1;
        Some((len, &self.parser.args[args]))
    }

    /// `take` without taking: the batched GET/SET path (`fast_path.rs`)
    /// looks first, runs the command, then `advance`s.
    #[inline]
    pub fn peek(&self, pos: usize) -> Option<(usize, &[Range<usize>])> {
        let (len, args) = self.next_at(pos)?;
        Some((len, &self.parser.args[args]))
    }

    /// The next skimmed command's length and where its argument ranges lie
    /// in `args`, if it starts at `pos`.
    #[inline]
    fn next_at(&self, pos: usize) -> Option<(usize, Range<usize>)> {
        let c = self.commands.get(self.next).filter(|c| c.start == pos)?;
        Some((c.len, c.args.clone()))
    }

    /// The hash of the key (first argument after the name) of the command
    /// `peek` shows, if the skim hashed it (a lone command is not).
    #[inline]
    pub fn key_hash(&self) -> Option<KeyHash> {
        self.commands.get(self.next)?.key_hash
    }

    /// The command `peek` showed was run.
    #[inline]
    pub fn advance(&mut self) {
        self.next += 1;
    }
}
