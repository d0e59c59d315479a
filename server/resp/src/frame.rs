//! Framing without parsing: where a multibulk command ends and which bytes
//! are its name and first argument, read from the length headers alone (the
//! other arguments are jumped over, never looked at or recorded). An
//! overloaded core refuses a command from this much (`command::admission`),
//! so a refusal costs a small fraction of serving it.
//!
//! Only the common well-formed shape is framed: a complete `*N` command of
//! `$N` bulks with short headers. Anything else (inline, incomplete, an
//! empty or oversized bulk, a malformed header) answers None and the full
//! parser reads it, with its exact errors and its resumable state.

use std::ops::Range;

use super::parse::{RequestParser, MULTIBULK_MAX};

/// A whole command at the start of a buffer: its length, its name and its
/// second argument (a subcommand, for the commands that have them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub end: usize,
    /// How many arguments, the name included.
    pub args: usize,
    pub name: Range<usize>,
    pub second: Option<Range<usize>>,
}

/// Frames the command at the start of `buf` if it is whole and plain, with
/// every bulk at most `max_bulk` bytes; the full parser would read the
/// same command of the same length.
#[inline]
pub fn frame(buf: &[u8], max_bulk: usize) -> Option<Frame> {
    if buf.first() != Some(&b'*') {
        return None;
    }
    let (count, mut pos) = RequestParser::short_number(buf, 0)?;
    if count > MULTIBULK_MAX {
        return None;
    }
    let mut name = 0..0;
    let mut second = None;
    for i in 0..count {
        if buf.get(pos) != Some(&b'$') {
            return None;
        }
        let (len, data) = RequestParser::short_number(buf, pos)?;
        if len as u64 > max_bulk as u64 {
            return None;
        }
        let end = data.checked_add(len as usize)?;
        if end.checked_add(2)? > buf.len() {
            return None;
        }
        match i {
            0 => name = data..end,
            1 => second = Some(data..end),
            _ => {}
        }
        // As the parser: the two bytes after the data are skipped unchecked.
        pos = end + 2;
    }
    Some(Frame {
        end: pos,
        args: count as usize,
        name,
        second,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Parsed;

    /// Wherever framing answers, the parser reads a command of the same
    /// length with the same first two arguments.
    #[test]
    fn agrees_with_the_parser() {
        let inputs: &[&[u8]] = &[
            b"*1\r\n$4\r\nPING\r\n",
            b"*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$2\r\nbb\r\n*1\r\n$4\r\nPING\r\n",
            b"*2\r\n$6\r\nPLUGIN\r\n$4\r\nCALL\r\n",
            b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n",
            b"*2\r\n$3\r\nGET\r\n$3\r\nab",
            b"*2\r\n$3\r\nGET\r\n",
            b"*2\r\n:3\r\nGET\r\n$1\r\na\r\n",
            b"*0\r\n",
            b"PING\r\n",
            b"*2\r\n$3\r\nGET\r\n$100\r\n",
            b"*1\r\n$99999999999\r\nx\r\n",
        ];
        let mut framed = 0;
        for &input in inputs {
            let mut parser = RequestParser::default();
            let parsed = parser.parse(input, 1 << 20, true);
            let Some(f) = frame(input, 1 << 20) else {
                continue;
            };
            framed += 1;
            assert_eq!(
                parsed,
                Parsed::Command {
                    end: f.end,
                    inline: false
                },
                "{input:?}"
            );
            assert_eq!(parser.args.len(), f.args);
            assert_eq!(parser.args.first(), Some(&f.name));
            assert_eq!(parser.args.get(1), f.second.as_ref());
        }
        assert_eq!(framed, 3, "the plain whole commands are framed");
        assert_eq!(
            frame(b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n", 4),
            None,
            "a bulk over the limit is left to the parser's error"
        );
    }
}
