//! Reply encoder: writes RESP2 or RESP3 straight into the connection's
//! output buffer. Types RESP2 lacks degrade the way Redis degrades them
//! (maps become flat arrays, doubles and verbatim text become bulk strings,
//! nulls become `$-1` / `*-1`).

use super::num;

pub struct Reply<'a> {
    pub buf: &'a mut Vec<u8>,
    pub resp3: bool,
}

impl<'a> Reply<'a> {
    #[inline]
    pub fn new(buf: &'a mut Vec<u8>, resp3: bool) -> Self {
        Reply { buf, resp3 }
    }

    /// Most headers (array counts, short values' lengths) are under 100:
    /// their line is built in one word, appended as one 8-byte store and
    /// cut to length, inline (out of line it cost ~50 instructions a GET).
    #[inline(always)]
    fn header(&mut self, tag: u8, n: i64) {
        let Ok(small @ 0..100) = u8::try_from(n) else {
            return self.long_header(tag, n);
        };
        let (digits, len) = if small < 10 {
            (u64::from(b'0' + small), 4)
        } else {
            (u64::from(num::DIGIT_PAIRS[usize::from(small)]), 5)
        };
        let line = u64::from(tag) | digits << 8 | 0x0a0d << (8 * (len - 2));
        let at = self.buf.len();
        self.buf.extend_from_slice(&line.to_le_bytes());
        self.buf.truncate(at + len);
    }

    #[inline(never)]
    fn long_header(&mut self, tag: u8, n: i64) {
        // Built whole on the stack, appended as one fixed-size copy and cut
        // to length: one capacity check and no memcpy call.
        let mut line = [0u8; num::HEADER_LEN];
        let len = num::header_line(&mut line, tag, n);
        let at = self.buf.len();
        self.buf.extend_from_slice(&line);
        self.buf.truncate(at + len);
    }

    #[inline]
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A simple string; `s` must not contain CR or LF.
    #[inline]
    pub fn simple(&mut self, s: &[u8]) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error line; `msg` starts with its code ("ERR ...", "WRONGPASS ...").
    /// CR and LF are replaced by spaces so arbitrary text cannot break framing.
    #[inline]
    pub fn error(&mut self, msg: &[u8]) {
        self.buf.push(b'-');
        self.buf.extend(
            msg.iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    #[inline]
    pub fn int(&mut self, v: i64) {
        self.header(b':', v);
    }

    #[inline]
    pub fn bulk(&mut self, s: &[u8]) {
        self.bulk_header(s.len());
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Starts a bulk string whose `len` bytes the caller appends, followed by `crlf`.
    #[inline]
    pub fn bulk_header(&mut self, len: usize) {
        self.header(b'$', len as i64);
    }

    #[inline]
    pub fn crlf(&mut self) {
        self.buf.extend_from_slice(b"\r\n");
    }

    #[inline]
    pub fn bulk_i64(&mut self, v: i64) {
        let mut b = [0u8; 21];
        let digits = num::fmt_i64(&mut b, v);
        self.bulk(digits);
    }

    #[inline]
    pub fn bulk_u64(&mut self, v: u64) {
        let mut b = [0u8; 21];
        let digits = num::fmt_u64(&mut b, v);
        self.bulk(digits);
    }

    /// Null bulk string.
    #[inline]
    pub fn null(&mut self) {
        self.buf
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }

    /// Null array (e.g. COMMAND INFO of an unknown name).
    #[inline]
    pub fn null_array(&mut self) {
        self.buf
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
    }

    #[inline]
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// A map of `n` pairs (RESP2: an array of 2n elements).
    #[inline]
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'%', n as i64);
        } else {
            self.header(b'*', 2 * n as i64);
        }
    }

    /// Out-of-band data (Pub/Sub messages): a RESP3 push, an array in RESP2.
    #[inline]
    pub fn push(&mut self, n: usize) {
        self.header(if self.resp3 { b'>' } else { b'*' }, n as i64);
    }

    #[inline]
    pub fn set(&mut self, n: usize) {
        self.header(if self.resp3 { b'~' } else { b'*' }, n as i64);
    }

    #[inline]
    pub fn double(&mut self, v: f64) {
        let mut b = [0u8; 400];
        let text = num::fmt_f64(&mut b, v);
        if self.resp3 {
            self.buf.push(b',');
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    #[inline]
    pub fn boolean(&mut self, v: bool) {
        if self.resp3 {
            self.buf
                .extend_from_slice(if v { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(v as i64);
        }
    }

    /// Plain text (INFO, CLIENT LIST): RESP3 verbatim string of format "txt".
    #[inline]
    pub fn verbatim(&mut self, text: &[u8]) {
        if self.resp3 {
            self.header(b'=', text.len() as i64 + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline]
    fn enc(resp3: bool, f: impl FnOnce(&mut Reply)) -> String {
        let mut v = Vec::new();
        f(&mut Reply::new(&mut v, resp3));
        String::from_utf8(v).unwrap()
    }

    #[test]
    #[inline]
    fn scalars() {
        assert_eq!(enc(false, |r| r.ok()), "+OK\r\n");
        assert_eq!(enc(false, |r| r.int(-42)), ":-42\r\n");
        assert_eq!(enc(false, |r| r.bulk(b"hi")), "$2\r\nhi\r\n");
        assert_eq!(enc(false, |r| r.bulk(b"")), "$0\r\n\r\n");
        assert_eq!(enc(false, |r| r.error(b"ERR a\r\nb")), "-ERR a  b\r\n");
    }

    /// The one-word short header and the general one write the same lines,
    /// after whatever the buffer already holds.
    #[test]
    fn headers_short_and_long() {
        for n in (-101..=1001).chain([1 << 40, i64::MIN, i64::MAX]) {
            let mut v = b"x".to_vec();
            Reply::new(&mut v, false).int(n);
            assert_eq!(v, format!("x:{n}\r\n").into_bytes(), "{n}");
            v.truncate(1);
            Reply::new(&mut v, false).long_header(b':', n);
            assert_eq!(v, format!("x:{n}\r\n").into_bytes(), "{n}");
        }
    }

    #[test]
    #[inline]
    fn resp2_vs_resp3() {
        assert_eq!(enc(false, |r| r.null()), "$-1\r\n");
        assert_eq!(enc(true, |r| r.null()), "_\r\n");
        assert_eq!(enc(false, |r| r.null_array()), "*-1\r\n");
        assert_eq!(enc(true, |r| r.null_array()), "_\r\n");
        assert_eq!(enc(false, |r| r.map(2)), "*4\r\n");
        assert_eq!(enc(true, |r| r.map(2)), "%2\r\n");
        assert_eq!(enc(false, |r| r.set(3)), "*3\r\n");
        assert_eq!(enc(true, |r| r.set(3)), "~3\r\n");
        assert_eq!(enc(false, |r| r.push(3)), "*3\r\n");
        assert_eq!(enc(true, |r| r.push(3)), ">3\r\n");
        assert_eq!(enc(false, |r| r.double(1.5)), "$3\r\n1.5\r\n");
        assert_eq!(enc(true, |r| r.double(1.5)), ",1.5\r\n");
        assert_eq!(enc(false, |r| r.boolean(true)), ":1\r\n");
        assert_eq!(enc(true, |r| r.boolean(false)), "#f\r\n");
        assert_eq!(enc(false, |r| r.verbatim(b"a:1")), "$3\r\na:1\r\n");
        assert_eq!(enc(true, |r| r.verbatim(b"a:1")), "=7\r\ntxt:a:1\r\n");
    }
}
