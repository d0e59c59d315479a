//! A parsed command's arguments, borrowed from the input buffer, plus the
//! argument conversions every command shares.

use std::ops::Range;

use super::error::CmdError;
use citadel_resp::num;

#[derive(Clone, Copy)]
pub struct Args<'a> {
    buf: &'a [u8],
    spans: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    pub fn new(buf: &'a [u8], spans: &'a [Range<usize>]) -> Self {
        Args { buf, spans }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// The buffer and each argument's span in it, as `new` took them.
    pub fn parts(&self) -> (&'a [u8], &'a [Range<usize>]) {
        (self.buf, self.spans)
    }

    /// Argument `i`; an empty slice past the end, so no handler can panic on
    /// a short argument list.
    pub fn get(&self, i: usize) -> &'a [u8] {
        self.spans
            .get(i)
            .and_then(|r| self.buf.get(r.clone()))
            .unwrap_or(&[])
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let buf = self.buf;
        self.spans
            .iter()
            .map(move |r| buf.get(r.clone()).unwrap_or(&[]))
    }

    /// Arguments from index `from` on.
    pub fn from(&self, from: usize) -> Args<'a> {
        Args {
            buf: self.buf,
            spans: self.spans.get(from..).unwrap_or(&[]),
        }
    }

    pub fn is(&self, i: usize, word: &str) -> bool {
        self.get(i).eq_ignore_ascii_case(word.as_bytes())
    }

    /// The arguments from `i` on are a flush's optional mode: nothing, or
    /// one ASYNC or SYNC (FLUSHALL, SCRIPT FLUSH, FUNCTION FLUSH).
    pub fn is_flush_mode(&self, i: usize) -> bool {
        self.len() == i || (self.len() == i + 1 && (self.is(i, "async") || self.is(i, "sync")))
    }

    pub fn int(&self, i: usize) -> Result<i64, CmdError> {
        num::parse_i64(self.get(i)).ok_or(CmdError::NotInteger)
    }

    pub fn float(&self, i: usize) -> Result<f64, CmdError> {
        num::parse_f64(self.get(i)).ok_or(CmdError::NotFloat)
    }
}
