//! Glob-style matching with the rules of Redis's `stringmatchlen`:
//! `*`, `?`, `[abc]`, `[^a-z]`, and `\` escapes; bytes, case-sensitive.

/// Whether `string` matches `pattern`.
pub fn glob_match(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer = false;
    matches(pattern, string, &mut skip_longer, 0)
}

fn matches(mut p: &[u8], mut s: &[u8], skip_longer: &mut bool, nesting: usize) -> bool {
    // Protection against abusive patterns, as in Redis.
    if nesting > 1000 {
        return false;
    }
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if matches(&p[1..], s, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                // The rest of the pattern matches nowhere in the rest of the
                // string, so earlier stars need not try longer matches.
                *skip_longer = true;
                return false;
            }
            b'?' => s = &s[1..],
            b'[' => {
                p = &p[1..];
                let not = p.first() == Some(&b'^');
                if not {
                    p = &p[1..];
                }
                let mut matched = false;
                loop {
                    match p {
                        [b'\\', esc, ..] => {
                            p = &p[1..];
                            matched |= *esc == s[0];
                        }
                        [b']', ..] => break,
                        [] => {
                            // Unterminated class: the loop's tail step below
                            // must not skip past the end.
                            break;
                        }
                        [lo, b'-', hi, ..] => {
                            let (lo, hi) = if lo > hi { (*hi, *lo) } else { (*lo, *hi) };
                            matched |= (lo..=hi).contains(&s[0]);
                            p = &p[2..];
                        }
                        [c, ..] => matched |= *c == s[0],
                    }
                    p = &p[1..];
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
            }
            b'\\' if p.len() >= 2 => {
                if p[1] != s[0] {
                    return false;
                }
                p = &p[1..];
                s = &s[1..];
            }
            c => {
                if c != s[0] {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = p.get(1..).unwrap_or(&[]);
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn stars_and_questions() {
        // As in Redis, a star needs at least one byte (KEYS * bypasses matching).
        assert!(!m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("user:*", "user:1"));
        assert!(!m("user:*", "usr:1"));
        assert!(m("*:*:*", "a:b:c"));
        assert!(m("a**b", "ab"));
        assert!(m("abc*", "abc"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert!(!m(
            "a*b*c*d*e*f*g*h*i*j*k*l*m*n*z",
            "abcdefghijklmnabcdefghijklmnabcdefghijklmnabcdefghijklmn"
        ));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("[\\]]", "]"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("a\\?", "a?"));
        assert!(m("\\\\", "\\"));
        assert!(!m("[abc", "d"));
        assert!(m("[abc", "a"));
        assert!(m("a\\", "a\\"));
    }
}
