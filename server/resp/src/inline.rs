//! Inline commands (`nc`/`telnet` style): one line split into arguments with
//! the quoting rules of Redis's `sdssplitargs`.

use std::ops::Range;

/// The quotes in a line do not balance (or a closing quote is not followed
/// by a space).
#[derive(Debug, PartialEq, Eq)]
pub struct Unbalanced;

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Splits `line` into arguments: their unescaped bytes go to `buf` (cleared
/// first) and their ranges within `buf` to `spans`.
pub fn split(
    line: &[u8],
    buf: &mut Vec<u8>,
    spans: &mut Vec<Range<usize>>,
) -> Result<(), Unbalanced> {
    buf.clear();
    spans.clear();
    // Like Redis's sdssplitargs on a C string: a NUL ends the line (inside
    // quotes that makes them unbalanced).
    let line = &line[..line.iter().position(|&c| c == 0).unwrap_or(line.len())];
    let mut p = 0;
    let n = line.len();
    loop {
        while p < n && is_space(line[p]) {
            p += 1;
        }
        if p == n {
            return Ok(());
        }
        let start = buf.len();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            let c = line.get(p).copied();
            if in_dq {
                match c {
                    None => return Err(Unbalanced),
                    Some(b'\\') if p + 3 < n && line[p + 1] == b'x' => {
                        match (hex(line[p + 2]), hex(line[p + 3])) {
                            (Some(h), Some(l)) => {
                                buf.push(h * 16 + l);
                                p += 3;
                            }
                            _ => {
                                buf.push(b'x');
                                p += 1;
                            }
                        }
                    }
                    Some(b'\\') if p + 1 < n => {
                        p += 1;
                        buf.push(match line[p] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        // A closing quote must be followed by a space or the end.
                        if p + 1 < n && !is_space(line[p + 1]) {
                            return Err(Unbalanced);
                        }
                        p += 1;
                        break;
                    }
                    Some(other) => buf.push(other),
                }
            } else if in_sq {
                match c {
                    None => return Err(Unbalanced),
                    Some(b'\\') if line.get(p + 1) == Some(&b'\'') => {
                        p += 1;
                        buf.push(b'\'');
                    }
                    Some(b'\'') => {
                        if p + 1 < n && !is_space(line[p + 1]) {
                            return Err(Unbalanced);
                        }
                        p += 1;
                        break;
                    }
                    Some(other) => buf.push(other),
                }
            } else {
                match c {
                    None | Some(b' ' | b'\n' | b'\r' | b'\t') => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(other) => buf.push(other),
                }
            }
            p += 1;
        }
        spans.push(start..buf.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Vec<String>, Unbalanced> {
        let (mut buf, mut spans) = (Vec::new(), Vec::new());
        split(line.as_bytes(), &mut buf, &mut spans)?;
        Ok(spans
            .into_iter()
            .map(|r| String::from_utf8_lossy(&buf[r]).into_owned())
            .collect())
    }

    #[test]
    fn plain_and_quoted() {
        assert_eq!(args("set a b").unwrap(), ["set", "a", "b"]);
        assert_eq!(args("  get   k  ").unwrap(), ["get", "k"]);
        assert_eq!(args("").unwrap(), Vec::<String>::new());
        assert_eq!(args("set k \"a b\"").unwrap(), ["set", "k", "a b"]);
        assert_eq!(
            args("set k \"\\x41\\n\\\"\"").unwrap(),
            ["set", "k", "A\n\""]
        );
        assert_eq!(args("set k 'it\\'s'").unwrap(), ["set", "k", "it's"]);
        assert_eq!(
            args("echo a\0b").unwrap(),
            ["echo", "a"],
            "NUL ends the line"
        );
        assert_eq!(args("\0").unwrap(), Vec::<String>::new());
        assert!(args("echo \"a\0b\"").is_err());
        assert_eq!(args("set k ''").unwrap(), ["set", "k", ""]);
        assert_eq!(args("echo \"\\xZZ\"").unwrap(), ["echo", "xZZ"]);
        assert_eq!(args("a\"b c\"").unwrap(), ["ab c"]);
    }

    #[test]
    fn unbalanced() {
        assert_eq!(args("set k \"abc"), Err(Unbalanced));
        assert_eq!(args("set k 'abc"), Err(Unbalanced));
        assert_eq!(args("set k \"a\"b"), Err(Unbalanced));
        assert_eq!(args("set k 'a'b"), Err(Unbalanced));
    }
}
