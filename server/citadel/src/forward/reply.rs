//! Where one RESP2/RESP3 reply ends in a byte stream: a peer's replies
//! are relayed as they came, so they are only framed, never decoded.

/// Replies nested deeper than this are refused (a peer is trusted, but a
/// broken one must not overflow the stack).
const MAX_DEPTH: usize = 64;

/// The stream is not RESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// The length of the reply at the start of `buf`; None until it is whole.
pub fn reply_len(buf: &[u8]) -> Result<Option<usize>, Malformed> {
    frame(buf, 0, 0)
}

fn frame(buf: &[u8], at: usize, depth: usize) -> Result<Option<usize>, Malformed> {
    if depth > MAX_DEPTH {
        return Err(Malformed);
    }
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some(eol) = find_crlf(buf, at + 1) else {
        return Ok(None);
    };
    let after_line = eol + 2;
    let count = || -> Result<i64, Malformed> {
        std::str::from_utf8(&buf[at + 1..eol])
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or(Malformed)
    };
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(after_line - at)),
        b'$' | b'=' | b'!' => {
            let n = count()?;
            if n < 0 {
                return Ok(Some(after_line - at));
            }
            let end = after_line + n as usize + 2;
            Ok((buf.len() >= end).then_some(end - at))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = count()?;
            if n < 0 {
                return Ok(Some(after_line - at));
            }
            let items = if matches!(kind, b'%' | b'|') {
                n * 2
            } else {
                n
            };
            let mut pos = after_line;
            for _ in 0..items {
                match frame(buf, pos, depth + 1)? {
                    Some(len) => pos += len,
                    None => return Ok(None),
                }
            }
            if kind == b'|' {
                // Attributes precede the reply they describe.
                return Ok(frame(buf, pos, depth + 1)?.map(|len| pos + len - at));
            }
            Ok(Some(pos - at))
        }
        _ => Err(Malformed),
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    rest.windows(2).position(|w| w == b"\r\n").map(|p| from + p)
}

/// The elements of an array reply (`*n` or RESP3 `~n`/`>n`), each as its
/// own bytes; None if `reply` is not one.
pub fn elements(reply: &[u8]) -> Option<Vec<&[u8]>> {
    if !matches!(reply.first(), Some(b'*' | b'~' | b'>')) {
        return None;
    }
    let eol = find_crlf(reply, 1)?;
    let n: usize = std::str::from_utf8(&reply[1..eol]).ok()?.parse().ok()?;
    let mut pos = eol + 2;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = frame(reply, pos, 1).ok()??;
        out.push(&reply[pos..pos + len]);
        pos += len;
    }
    Some(out)
}

/// The value of an integer reply (`:n`), None if `reply` is not one.
pub fn integer(reply: &[u8]) -> Option<i64> {
    let body = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    std::str::from_utf8(body).ok()?.parse().ok()
}

/// The content of a bulk string reply (`$n`, RESP3 verbatim `=n` as
/// is), None if `reply` is not one (a nil included).
pub fn bulk(reply: &[u8]) -> Option<&[u8]> {
    if !matches!(reply.first(), Some(b'$' | b'=')) {
        return None;
    }
    let eol = find_crlf(reply, 1)?;
    let n: usize = std::str::from_utf8(&reply[1..eol]).ok()?.parse().ok()?;
    reply.get(eol + 2..eol + 2 + n)
}

/// What an invalidation push (RESP3 `>2 invalidate <keys>`) asks.
#[derive(Debug, PartialEq, Eq)]
pub enum Invalidation<'a> {
    Keys(Vec<&'a [u8]>),
    /// Null keys: everything (the peer flushed).
    All,
}

/// The invalidation `reply` pushes, None if it is no such push (any
/// other frame is a reply).
pub fn invalidation(reply: &[u8]) -> Option<Invalidation<'_>> {
    if reply.first() != Some(&b'>') {
        return None;
    }
    let [kind, keys] = elements(reply)?[..] else {
        return None;
    };
    if bulk(kind)? != b"invalidate" {
        return None;
    }
    if matches!(keys, b"_\r\n" | b"$-1\r\n" | b"*-1\r\n") {
        return Some(Invalidation::All);
    }
    let keys = elements(keys)?;
    keys.into_iter()
        .map(bulk)
        .collect::<Option<Vec<_>>>()
        .map(Invalidation::Keys)
}

/// `host:port` of a `-MOVED <slot> <host:port>` reply.
pub fn moved_to(reply: &[u8]) -> Option<&str> {
    let body = reply.strip_prefix(b"-MOVED ")?.strip_suffix(b"\r\n")?;
    let text = std::str::from_utf8(body).ok()?;
    text.split_once(' ').map(|(_, addr)| addr)
}

/// The node a part's `replies` send it to, when nothing of it ran: every
/// reply is `-MOVED` to that one node (single commands, a batch's part),
/// or the part is a transaction (MULTI ... EXEC) whose queue was refused
/// with `-MOVED` to it and whose EXEC aborted.
pub fn redirect_of(replies: &[Vec<u8>]) -> Option<&str> {
    if let Some(owner) = one_owner(replies.iter()) {
        return Some(owner);
    }
    let [multi, queue @ .., exec] = replies else {
        return None;
    };
    if multi.as_slice() != b"+OK\r\n" || !exec.starts_with(b"-EXECABORT") {
        return None;
    }
    one_owner(queue.iter().filter(|r| r.as_slice() != b"+QUEUED\r\n"))
}

/// The node all of `replies` (one at least) are `-MOVED` to.
fn one_owner<'a>(mut replies: impl Iterator<Item = &'a Vec<u8>>) -> Option<&'a str> {
    let owner = moved_to(replies.next()?)?;
    replies.all(|r| moved_to(r) == Some(owner)).then_some(owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_every_reply_kind_and_waits_for_the_rest() {
        let whole: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR x\r\n",
            b":12\r\n",
            b"$-1\r\n",
            b"$3\r\nabc\r\n",
            b"*2\r\n$1\r\na\r\n$-1\r\n",
            b"*-1\r\n",
            b"%1\r\n+k\r\n*1\r\n:1\r\n",
            b"_\r\n",
            b"|1\r\n+a\r\n+b\r\n:5\r\n",
        ];
        for r in whole {
            let mut buf = r.to_vec();
            buf.extend_from_slice(b"+NEXT\r\n");
            assert_eq!(reply_len(&buf), Ok(Some(r.len())), "{:?}", r);
            for cut in 0..r.len() {
                assert_eq!(reply_len(&r[..cut]), Ok(None), "{:?} cut {cut}", r);
            }
        }
        assert_eq!(reply_len(b"?\r\n"), Err(Malformed));
        assert_eq!(reply_len(b"$x\r\n"), Err(Malformed));
    }

    #[test]
    fn reads_arrays_integers_and_moved() {
        let els = elements(b"*3\r\n$1\r\na\r\n$-1\r\n*1\r\n:1\r\n").unwrap();
        assert_eq!(els, vec![&b"$1\r\na\r\n"[..], b"$-1\r\n", b"*1\r\n:1\r\n"]);
        assert_eq!(integer(b":42\r\n"), Some(42));
        assert_eq!(integer(b"+OK\r\n"), None);
        assert_eq!(bulk(b"$3\r\na\r\n\r\n"), Some(&b"a\r\n"[..]));
        assert_eq!(bulk(b"$-1\r\n"), None);
        assert_eq!(
            moved_to(b"-MOVED 12 10.0.0.1:7000\r\n"),
            Some("10.0.0.1:7000")
        );
        assert_eq!(moved_to(b"-ERR no\r\n"), None);
    }

    #[test]
    fn tells_an_invalidation_push_from_a_reply() {
        let push = b">2\r\n$10\r\ninvalidate\r\n*2\r\n$1\r\nk\r\n$2\r\nk2\r\n";
        let keys = Invalidation::Keys(vec![&b"k"[..], b"k2"]);
        assert_eq!(invalidation(push), Some(keys));
        assert_eq!(
            invalidation(b">2\r\n$10\r\ninvalidate\r\n_\r\n"),
            Some(Invalidation::All)
        );
        let message = b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n";
        assert_eq!(invalidation(message), None);
        assert_eq!(invalidation(b"*2\r\n$10\r\ninvalidate\r\n_\r\n"), None);
        assert_eq!(invalidation(b"$10\r\ninvalidate\r\n"), None);
    }

    #[test]
    fn a_part_is_redirected_only_when_none_of_it_ran() {
        let r = |items: &[&[u8]]| items.iter().map(|i| i.to_vec()).collect::<Vec<_>>();
        let moved: &[u8] = b"-MOVED 7 10.0.0.2:7000\r\n";
        let elsewhere: &[u8] = b"-MOVED 7 10.0.0.3:7000\r\n";
        assert_eq!(redirect_of(&r(&[moved])), Some("10.0.0.2:7000"));
        assert_eq!(redirect_of(&r(&[moved, moved])), Some("10.0.0.2:7000"));
        assert_eq!(redirect_of(&r(&[moved, b":1\r\n"])), None);
        assert_eq!(redirect_of(&r(&[moved, elsewhere])), None);
        let abort: &[u8] = b"-EXECABORT Transaction discarded because of previous errors.\r\n";
        let tx = r(&[b"+OK\r\n", moved, moved, abort]);
        assert_eq!(redirect_of(&tx), Some("10.0.0.2:7000"));
        let queued = r(&[b"+OK\r\n", b"+QUEUED\r\n", moved, abort]);
        assert_eq!(redirect_of(&queued), Some("10.0.0.2:7000"));
        let ran = r(&[b"+OK\r\n", b"+QUEUED\r\n", b"*1\r\n:1\r\n"]);
        assert_eq!(redirect_of(&ran), None);
        let other_error = r(&[b"+OK\r\n", b"-ERR syntax\r\n", moved, abort]);
        assert_eq!(redirect_of(&other_error), None);
        assert_eq!(redirect_of(&[]), None);
    }
}
