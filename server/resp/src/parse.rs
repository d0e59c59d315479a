//! Request parser. Arguments are recorded as byte ranges into the caller's
//! buffer (or, for inline commands, into the parser's unescape buffer), so a
//! command costs no allocation once the argument vector has warmed up. A
//! multibulk command that is not complete yet keeps its progress, so a large
//! pipeline or value arriving in many reads is not re-parsed from the start.

use std::fmt;
use std::ops::Range;

use super::{inline, num};

/// Longest inline line or count line without a newline (Redis's PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX: usize = 64 * 1024;
/// Most arguments in one multibulk request.
pub const MULTIBULK_MAX: i64 = 1024 * 1024;
/// Limits for clients that still have to authenticate (as Redis 7.2).
const UNAUTH_MULTIBULK_MAX: i64 = 10;
const UNAUTH_BULK_MAX: i64 = 16384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    TooBigInline,
    UnbalancedQuotes,
    TooBigCount,
    TooBigBulkCount,
    InvalidMultibulk,
    UnauthMultibulk,
    InvalidBulk,
    UnauthBulk,
    ExpectedDollar(u8),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ERR Protocol error: ")?;
        match self {
            ProtocolError::TooBigInline => f.write_str("too big inline request"),
            ProtocolError::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
            ProtocolError::TooBigCount => f.write_str("too big mbulk count string"),
            ProtocolError::TooBigBulkCount => f.write_str("too big bulk count string"),
            ProtocolError::InvalidMultibulk => f.write_str("invalid multibulk length"),
            ProtocolError::UnauthMultibulk => f.write_str("unauthenticated multibulk length"),
            ProtocolError::InvalidBulk => f.write_str("invalid bulk length"),
            ProtocolError::UnauthBulk => f.write_str("unauthenticated bulk length"),
            ProtocolError::ExpectedDollar(c) => write!(f, "expected '$', got '{}'", *c as char),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A command of `end` bytes; its arguments are in `args`/`buf` of the parser.
    Command {
        end: usize,
        inline: bool,
    },
    /// `end` bytes that hold no command (empty line, `*0`).
    Empty {
        end: usize,
    },
    /// More input is needed; `need` is the total length that would let parsing
    /// progress, 0 when unknown.
    Incomplete {
        need: usize,
    },
    Error(ProtocolError),
}

#[derive(Debug, Clone, Copy)]
struct Partial {
    pos: usize,
    remaining: usize,
}

#[derive(Default)]
pub struct RequestParser {
    /// Argument ranges of the last parsed command.
    pub args: Vec<Range<usize>>,
    /// Unescaped arguments of an inline command.
    pub inline_buf: Vec<u8>,
    partial: Option<Partial>,
}

#[inline]
fn find(hay: &[u8], from: usize, needle: u8) -> Option<usize> {
    hay.get(from..)?
        .iter()
        .position(|&c| c == needle)
        .map(|i| i + from)
}

impl RequestParser {
    /// Forgets a command left incomplete by the last call.
    pub fn reset(&mut self) {
        self.partial = None;
    }

    /// Parses one request at the start of `buf`. If the previous call on this
    /// parser returned `Incomplete`, `buf` must start with the same bytes.
    #[inline]
    pub fn parse(&mut self, buf: &[u8], max_bulk: usize, authed: bool) -> Parsed {
        if let Some(p) = self.partial.take() {
            if p.pos <= buf.len() {
                return self.bulks(buf, p.pos, p.remaining, max_bulk, authed);
            }
            // The caller broke the contract; start over rather than misread.
        }
        match buf.first() {
            None => Parsed::Incomplete { need: 0 },
            Some(b'*') => self.multibulk::<false>(buf, max_bulk, authed),
            Some(_) => self.inline(buf),
        }
    }

    /// Reading ahead (the server's pipeline skim): parses one multibulk
    /// command at the start of `buf` as `parse` does, but appends its
    /// argument ranges (relative to `buf`) after those already in `args`
    /// instead of replacing them, so the ranges of many commands stay in
    /// one vector without being copied out. None for an inline command
    /// (its unescaping would replace `args`). A command left incomplete is
    /// not continued; after anything but `Command`, `args` may end with
    /// ranges of the unfinished command and the caller must `reset`.
    #[inline(always)]
    pub fn parse_appending(&mut self, buf: &[u8], max_bulk: usize, authed: bool) -> Option<Parsed> {
        match buf.first() {
            None => Some(Parsed::Incomplete { need: 0 }),
            Some(b'*') => Some(self.multibulk::<true>(buf, max_bulk, authed)),
            Some(_) => None,
        }
    }

    #[inline]
    fn inline(&mut self, buf: &[u8]) -> Parsed {
        let Some(nl) = find(buf, 0, b'\n') else {
            return if buf.len() > INLINE_MAX {
                Parsed::Error(ProtocolError::TooBigInline)
            } else {
                Parsed::Incomplete { need: 0 }
            };
        };
        let mut line = &buf[..nl];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if inline::split(line, &mut self.inline_buf, &mut self.args).is_err() {
            return Parsed::Error(ProtocolError::UnbalancedQuotes);
        }
        if self.args.is_empty() {
            Parsed::Empty { end: nl + 1 }
        } else {
            Parsed::Command {
                end: nl + 1,
                inline: true,
            }
        }
    }

    /// The common header, read in one pass: the prefix byte at `pos`, 1 to 18
    /// digits without a leading zero, CR and at least one more byte. Returns the
    /// number and where the line ends; None for anything else (then `line_number`
    /// decides, with Redis's exact rules: on these inputs both agree).
    #[inline(always)]
    pub(crate) fn short_number(buf: &[u8], pos: usize) -> Option<(i64, usize)> {
        let (&first, rest) = buf.get(pos + 1..)?.split_first()?;
        if !first.is_ascii_digit() || first == b'0' {
            return None;
        }
        let mut v = i64::from(first - b'0');
        // At most 17 more digits (18 in all cannot overflow), then the CR.
        for (i, &c) in rest.iter().take(18).enumerate() {
            if c.is_ascii_digit() {
                if i == 17 {
                    return None;
                }
                v = v * 10 + i64::from(c - b'0');
                continue;
            }
            let cr = pos + 2 + i;
            // Like `line_number`: the LF must have arrived (its value is not checked).
            return (c == b'\r' && cr + 1 < buf.len()).then_some((v, cr + 2));
        }
        None
    }

    /// The commonest header of all: `tag` at `pos`, one or two digits (no
    /// leading zero), CR and at least one more byte, read without a loop.
    /// Returns the number and where the line ends; None for anything else
    /// (then `header` decides: on these inputs both agree). Every argument
    /// of a short command (names, keys, values under 100 bytes) has one.
    #[inline(always)]
    pub(crate) fn tiny_number(buf: &[u8], pos: usize, tag: u8) -> Option<(usize, usize)> {
        let &[prefix, high, second, third, _] = buf.get(pos..pos.checked_add(5)?)? else {
            return None;
        };
        let high = high.wrapping_sub(b'1');
        if prefix != tag || high > 8 {
            return None;
        }
        let high = usize::from(high) + 1;
        if second == b'\r' {
            return Some((high, pos + 4));
        }
        let low = second.wrapping_sub(b'0');
        (low <= 9 && third == b'\r').then_some((high * 10 + usize::from(low), pos + 5))
    }

    /// A `*N` or `$N` line at `pos`: the short form in one pass, else the general one.
    #[inline(always)]
    fn header(
        buf: &[u8],
        pos: usize,
        too_big: ProtocolError,
    ) -> Result<Option<(Option<i64>, usize)>, ProtocolError> {
        match Self::short_number(buf, pos) {
            Some((n, end)) => Ok(Some((Some(n), end))),
            None => Self::line_number(buf, pos, too_big),
        }
    }

    /// Reads the number after a one-byte prefix at `pos`, up to CR LF.
    /// Ok(None) when the line is not complete yet.
    #[inline]
    fn line_number(
        buf: &[u8],
        pos: usize,
        too_big: ProtocolError,
    ) -> Result<Option<(Option<i64>, usize)>, ProtocolError> {
        match find(buf, pos, b'\r') {
            None if buf.len() - pos > INLINE_MAX => Err(too_big),
            None => Ok(None),
            // Redis wants the LF to be present but does not check it.
            Some(cr) if cr + 1 >= buf.len() => Ok(None),
            // An empty line where a `$N` or `*N` header belongs puts the CR
            // at `pos` itself: the number is then empty (invalid), never a
            // reversed range.
            Some(cr) => Ok(Some((
                buf.get(pos + 1..cr).and_then(num::parse_i64),
                cr + 2,
            ))),
        }
    }

    /// `APPEND`: keep the ranges already in `args` (`parse_appending`).
    #[inline]
    fn multibulk<const APPEND: bool>(
        &mut self,
        buf: &[u8],
        max_bulk: usize,
        authed: bool,
    ) -> Parsed {
        if let Some((count, pos)) = Self::tiny_number(buf, 0, b'*') {
            if count > UNAUTH_MULTIBULK_MAX as usize && !authed {
                return Parsed::Error(ProtocolError::UnauthMultibulk);
            }
            if !APPEND {
                self.args.clear();
            }
            return self.bulks(buf, pos, count, max_bulk, authed);
        }
        let (count, pos) = match Self::header(buf, 0, ProtocolError::TooBigCount) {
            Err(e) => return Parsed::Error(e),
            Ok(None) => return Parsed::Incomplete { need: 0 },
            Ok(Some(v)) => v,
        };
        let count = match count {
            Some(n) if n > MULTIBULK_MAX => return Parsed::Error(ProtocolError::InvalidMultibulk),
            Some(n) if n > UNAUTH_MULTIBULK_MAX && !authed => {
                return Parsed::Error(ProtocolError::UnauthMultibulk)
            }
            Some(n) if n <= 0 => return Parsed::Empty { end: pos },
            Some(n) => n as usize,
            None => return Parsed::Error(ProtocolError::InvalidMultibulk),
        };
        if !APPEND {
            self.args.clear();
        }
        self.bulks(buf, pos, count, max_bulk, authed)
    }

    /// The arguments from `pos` on. The common shape, `$` and one or two
    /// digits with the data whole in `buf` (no unauthenticated limit to
    /// check: under 100 bytes), is read inline in a loop that keeps few
    /// registers; anything else, and what it would refuse, goes to
    /// `bulks_general` from there on (as one function, its prologue and
    /// epilogue cost ~18 instructions a command).
    #[inline(always)]
    fn bulks(
        &mut self,
        buf: &[u8],
        mut pos: usize,
        mut remaining: usize,
        max_bulk: usize,
        authed: bool,
    ) -> Parsed {
        while remaining > 0 {
            let Some((len, data)) = Self::tiny_number(buf, pos, b'$') else {
                return self.bulks_general(buf, pos, remaining, max_bulk, authed);
            };
            let end = data + len;
            if len > max_bulk || end + 2 > buf.len() {
                return self.bulks_general(buf, pos, remaining, max_bulk, authed);
            }
            self.args.push(data..end);
            pos = end + 2;
            remaining -= 1;
        }
        Parsed::Command {
            end: pos,
            inline: false,
        }
    }

    #[inline(never)]
    fn bulks_general(
        &mut self,
        buf: &[u8],
        mut pos: usize,
        mut remaining: usize,
        max_bulk: usize,
        authed: bool,
    ) -> Parsed {
        while remaining > 0 {
            if pos >= buf.len() {
                self.partial = Some(Partial { pos, remaining });
                return Parsed::Incomplete { need: 0 };
            }
            let (len, data) = match Self::header(buf, pos, ProtocolError::TooBigBulkCount) {
                Err(e) => return Parsed::Error(e),
                Ok(None) => {
                    self.partial = Some(Partial { pos, remaining });
                    return Parsed::Incomplete { need: 0 };
                }
                Ok(Some(v)) => v,
            };
            if buf[pos] != b'$' {
                return Parsed::Error(ProtocolError::ExpectedDollar(buf[pos]));
            }
            let len = match len {
                Some(n) if n >= 0 && (n as u64) <= max_bulk as u64 => n,
                _ => return Parsed::Error(ProtocolError::InvalidBulk),
            };
            if len > UNAUTH_BULK_MAX && !authed {
                return Parsed::Error(ProtocolError::UnauthBulk);
            }
            let end = data + len as usize;
            if end + 2 > buf.len() {
                self.partial = Some(Partial { pos, remaining });
                return Parsed::Incomplete { need: end + 2 };
            }
            // Like Redis, the two bytes after the data are skipped unchecked.
            self.args.push(data..end);
            pos = end + 2;
            remaining -= 1;
        }
        Parsed::Command {
            end: pos,
            inline: false,
        }
    }

    /// The argument bytes of the last command parsed from `input`.
    #[inline]
    pub fn buf<'a>(&'a self, input: &'a [u8], inline: bool) -> &'a [u8] {
        if inline {
            &self.inline_buf
        } else {
            input
        }
    }
}

#[cfg(test)]
mod short_number_tests {
    use super::{ProtocolError, RequestParser};

    /// Wherever the one-pass reader answers, the general one answers the same.
    #[test]
    fn agrees_with_line_number() {
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for body in [
            "0",
            "00",
            "01",
            "1",
            "9",
            "12",
            "10",
            "99",
            "100",
            "1x",
            "-1",
            "+1",
            "1a",
            "",
            " 1",
            "1 ",
            "123456789012345678",
            "1234567890123456789",
            "9223372036854775807",
            "9223372036854775808",
            "99999999999999999999",
            "999999999999999999",
            "9999999999999999999",
        ] {
            for tail in ["", "\r", "\r\n", "\rx", "\rxy", "\r\nx", "\n", "x\r\n"] {
                lines.push(format!("${body}{tail}").into_bytes());
            }
        }
        for line in &lines {
            let general = RequestParser::line_number(line, 0, ProtocolError::TooBigBulkCount);
            if let Some((n, end)) = RequestParser::tiny_number(line, 0, b'$') {
                assert_eq!(general, Ok(Some((Some(n as i64), end))), "{line:?}");
            }
            assert_eq!(RequestParser::tiny_number(line, 0, b'*'), None, "{line:?}");
            let mut count_line = line.clone();
            count_line[0] = b'*';
            assert_eq!(
                RequestParser::tiny_number(&count_line, 0, b'*'),
                RequestParser::tiny_number(line, 0, b'$'),
                "{line:?}"
            );
            if let Some((n, end)) = RequestParser::short_number(line, 0) {
                assert_eq!(general, Ok(Some((Some(n), end))), "{line:?}");
            }
            assert_eq!(
                RequestParser::header(line, 0, ProtocolError::TooBigBulkCount),
                general,
                "{line:?}"
            );
        }
    }
}
