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
//!
//! Across connections (`lone_key`, `prefetch_across`): at pipeline 1 each
//! connection brings one command per turn, so the loop asks, before running
//! any, for each lone command's key to be prefetched (`Service::prefetch`).

use std::ops::Range;

use crate::thread::ThreadCtx;
use citadel_cache::KeyHash;
use citadel_resp::parse::{Parsed, RequestParser};

/// Commands skimmed at most: the longest run of the fast path.
pub const AHEAD: usize = 32;
/// Longest key hashed for a turn's prefetch across connections (a hint:
/// the hash costs about a cycle a byte) ...
const LONE_KEY_MAX: usize = 512;
/// ... and most arguments of a command read for it.
const LONE_ARGS_MAX: usize = 8;

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

/// Prefetches the keys of a turn's lone commands (one per connection)
/// together, up to one skim's worth at a time.
pub fn prefetch_across<'a>(ctx: &ThreadCtx, keys: impl Iterator<Item = &'a [u8]>) {
    let mut batch = [&[][..]; AHEAD];
    let mut hashes = [0u64; AHEAD];
    let mut keys = keys.peekable();
    while keys.peek().is_some() {
        let mut n = 0;
        for (slot, key) in batch.iter_mut().zip(keys.by_ref()) {
            *slot = key;
            n += 1;
        }
        // Parsed first, then hashed and prefetched in a loop of their own
        // (as in `Skim::prefetch_keys`: the page walks of a short loop's
        // prefetches overlap), then each matching item.
        for (hash, key) in hashes.iter_mut().zip(&batch[..n]) {
            *hash = ctx.cache.prefetch_key(key).into();
        }
        for &hash in &hashes[..n] {
            ctx.cache.prefetch_item(hash);
        }
    }
}

/// The first argument after the name (the key, for most commands) when
/// `input` holds exactly one whole RESP command of 2 to `LONE_ARGS_MAX`
/// arguments (an input of several is skimmed by its session, which
/// prefetches its keys itself). A hint for the turn's prefetch, not a
/// validating parse: the session parses the command as usual.
#[inline]
pub fn lone_key(input: &[u8]) -> Option<&[u8]> {
    let (argc, mut pos) = header(input, 0, b'*')?;
    if !(2..=LONE_ARGS_MAX).contains(&argc) {
        return None;
    }
    let mut key = 0..0;
    for arg in 0..argc {
        let (len, start) = header(input, pos, b'$')?;
        if arg == 1 {
            key = start..start + len;
        }
        pos = start + len + 2;
    }
    if pos != input.len() || key.len() > LONE_KEY_MAX {
        return None;
    }
    input.get(key)
}

/// The `<tag><digits>\r\n` header at `pos` (1 to 6 digits): its number and
/// where what follows it begins. (A plain loop: an iterator chain here cost
/// ~100 instructions a header.)
#[inline]
fn header(input: &[u8], pos: usize, tag: u8) -> Option<(usize, usize)> {
    if input.get(pos) != Some(&tag) {
        return None;
    }
    let mut n = 0;
    let mut i = pos + 1;
    while i <= pos + 7 {
        match *input.get(i)? {
            b @ b'0'..=b'9' => n = n * 10 + usize::from(b - b'0'),
            b'\r' if i > pos + 1 => return Some((n, i + 2)),
            _ => return None,
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::lone_key;

    #[test]
    fn lone_key_reads_the_key_of_one_whole_command() {
        assert_eq!(
            lone_key(b"*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n"),
            Some(&b"key:1"[..])
        );
        let set = b"*3\r\n$3\r\nSET\r\n$2\r\nab\r\n$12\r\nvalue 12 by.\r\n";
        assert_eq!(lone_key(set), Some(&b"ab"[..]));
        assert_eq!(lone_key(b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n"), Some(&b""[..]));
    }

    #[test]
    fn lone_key_is_none_for_anything_else() {
        for input in [
            &b""[..],
            b"*1\r\n$4\r\nPING\r\n",
            b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n",
            b"*2\r\n$3\r\nGET\r\n$5\r\nkey",
            b"*2\r\n$3\r\nGET\r\n$5",
            b"*2\r\n$3\r\nGE",
            b"GET key\r\n",
            b"*2\r\n$x\r\n",
            b"*\r\n",
            b"*2\r\n$9999999\r\n",
            b"*9\r\n$3\r\nDEL\r\n",
            b"*99999999999999999999\r\n",
        ] {
            assert_eq!(
                lone_key(input),
                None,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let long_key = format!("*2\r\n$3\r\nGET\r\n$513\r\n{}\r\n", "k".repeat(513));
        assert_eq!(lone_key(long_key.as_bytes()), None);
    }
}
