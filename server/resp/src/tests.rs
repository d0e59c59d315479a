//! Parser tests: pipelines, split reads at every byte boundary, inline
//! commands, malformed input and protocol-error texts.

use super::parse::{Parsed, ProtocolError, RequestParser};

const MAX_BULK: usize = 1 << 20;

/// Feeds `input` in pieces of `step` bytes the way the network loop does
/// (keeping unconsumed bytes), returning each command's arguments.
fn run_split(input: &[u8], step: usize) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
    let mut parser = RequestParser::default();
    let mut buf = Vec::new();
    let mut commands = Vec::new();
    for piece in input.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match parser.parse(&buf, MAX_BULK, true) {
                Parsed::Command { end, inline } => {
                    let args_buf = parser.buf(&buf, inline);
                    commands.push(
                        parser
                            .args
                            .iter()
                            .map(|r| args_buf[r.clone()].to_vec())
                            .collect(),
                    );
                    buf.drain(..end);
                }
                Parsed::Empty { end } => {
                    buf.drain(..end);
                }
                Parsed::Incomplete { .. } => break,
                Parsed::Error(e) => return Err(e),
            }
        }
    }
    if !buf.is_empty() {
        commands.push(vec![b"<incomplete>".to_vec(), buf]);
    }
    Ok(commands)
}

fn owned(cmds: &[&[&str]]) -> Vec<Vec<Vec<u8>>> {
    cmds.iter()
        .map(|c| c.iter().map(|a| a.as_bytes().to_vec()).collect())
        .collect()
}

fn parse_one(input: &[u8]) -> Parsed {
    RequestParser::default().parse(input, MAX_BULK, true)
}

#[test]
fn pipeline_split_at_every_boundary() {
    let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n\
PING\r\n*0\r\nset a \"b c\"\n*1\r\n$0\r\n\r\n\r\n";
    let expected = owned(&[
        &["SET", "k", "hello"],
        &["GET", "k"],
        &["PING"],
        &["set", "a", "b c"],
        &[""],
    ]);
    for step in 1..=input.len() {
        assert_eq!(run_split(input, step).unwrap(), expected, "step {step}");
    }
}

#[test]
fn binary_bulk_with_crlf_inside() {
    let input = b"*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\r\n\r\n";
    assert_eq!(
        run_split(input, 1).unwrap(),
        owned(&[&["ECHO", "\r\n\r\n"]])
    );
}

#[test]
fn incomplete_bulk_reports_need() {
    assert_eq!(
        parse_one(b"*1\r\n$10\r\nab"),
        Parsed::Incomplete { need: 21 }
    );
    assert_eq!(
        parse_one(b"*2\r\n$1\r\na\r\n$3"),
        Parsed::Incomplete { need: 0 }
    );
    assert_eq!(parse_one(b"*1\r\n"), Parsed::Incomplete { need: 0 });
    assert_eq!(parse_one(b"GET k"), Parsed::Incomplete { need: 0 });
}

#[test]
fn resumes_after_partial_without_reparsing_args() {
    let mut p = RequestParser::default();
    let full = b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n";
    assert!(matches!(
        p.parse(&full[..15], MAX_BULK, true),
        Parsed::Incomplete { .. }
    ));
    assert_eq!(
        p.parse(full, MAX_BULK, true),
        Parsed::Command {
            end: full.len(),
            inline: false
        }
    );
    assert_eq!(p.args.len(), 3);
}

#[test]
fn parse_appending_keeps_earlier_ranges_and_skips_inline() {
    let mut p = RequestParser::default();
    let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$2\r\nab\r\n$1\r\nv\r\nPING\r\n";
    let first = p.parse_appending(input, MAX_BULK, true);
    let Some(Parsed::Command { end, inline: false }) = first else {
        panic!("{first:?}");
    };
    let rest = &input[end..];
    let second = p.parse_appending(rest, MAX_BULK, true);
    let Some(Parsed::Command { end: end2, .. }) = second else {
        panic!("{second:?}");
    };
    // The first command's two ranges (relative to its start), then the
    // second's three (relative to its own).
    let spans: Vec<&[u8]> = p.args[..2]
        .iter()
        .map(|r| &input[r.clone()])
        .chain(p.args[2..].iter().map(|r| &rest[r.clone()]))
        .collect();
    assert_eq!(spans, [&b"GET"[..], b"k", b"SET", b"ab", b"v"]);
    // An inline command is left to `parse`; the ranges stay.
    assert_eq!(p.parse_appending(&rest[end2..], MAX_BULK, true), None);
    assert_eq!(p.args.len(), 5);
    assert_eq!(
        p.parse_appending(b"*1\r\n$4\r\nPI", MAX_BULK, true),
        Some(Parsed::Incomplete { need: 14 })
    );
}

#[test]
fn empty_requests() {
    assert_eq!(parse_one(b"*0\r\n"), Parsed::Empty { end: 4 });
    assert_eq!(parse_one(b"*-1\r\n"), Parsed::Empty { end: 5 });
    assert_eq!(parse_one(b"\r\n"), Parsed::Empty { end: 2 });
    assert_eq!(parse_one(b"   \n"), Parsed::Empty { end: 4 });
}

#[test]
fn malformed_input() {
    use ProtocolError::*;
    let cases: &[(&[u8], ProtocolError)] = &[
        (b"*abc\r\n", InvalidMultibulk),
        (b"*1048577\r\n", InvalidMultibulk),
        (b"*+1\r\n", InvalidMultibulk),
        (b"*1\r\nx3\r\n", ExpectedDollar(b'x')),
        // An empty line where a bulk header belongs (once a panic).
        (b"*2\r\n$3\r\nGET\r\n\r\nxx\r\n", ExpectedDollar(b'\r')),
        (b"*1\r\n\r\n", ExpectedDollar(b'\r')),
        (b"*\r\n", InvalidMultibulk),
        (b"*1\r\n$\r\n", InvalidBulk),
        (b"*1\r\n$-1\r\n", InvalidBulk),
        (b"*1\r\n$abc\r\n", InvalidBulk),
        (b"*1\r\n$2000000\r\n", InvalidBulk),
        (b"set k \"abc\r\n", UnbalancedQuotes),
    ];
    for (input, err) in cases {
        assert_eq!(
            parse_one(input),
            Parsed::Error(*err),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    assert_eq!(parse_one(&vec![b'a'; 70_000]), Parsed::Error(TooBigInline));
    let mut count = b"*".to_vec();
    count.extend(vec![b'1'; 70_000]);
    assert_eq!(parse_one(&count), Parsed::Error(TooBigCount));
    let mut bulk = b"*1\r\n$".to_vec();
    bulk.extend(vec![b'1'; 70_000]);
    assert_eq!(parse_one(&bulk), Parsed::Error(TooBigBulkCount));
}

/// The short-header path (one or two digits) still applies the bulk limit
/// and reports what an incomplete short bulk needs.
#[test]
fn short_headers_keep_the_limits() {
    let mut p = RequestParser::default();
    assert_eq!(
        p.parse(b"*1\r\n$5\r\nhello\r\n", 4, true),
        Parsed::Error(ProtocolError::InvalidBulk)
    );
    assert_eq!(
        p.parse(b"*2\r\n$3\r\nGET\r\n$16\r\nkey", MAX_BULK, true),
        Parsed::Incomplete { need: 36 }
    );
    assert_eq!(
        parse_one(b"*2\r\n$3\r\nGET\r\n$16\r\nkey:000000012345\r\n"),
        Parsed::Command {
            end: 36,
            inline: false
        }
    );
    assert_eq!(
        parse_one(b"*12\r\n$3\r\nDEL"),
        Parsed::Incomplete { need: 14 }
    );
}

#[test]
fn unauthenticated_limits() {
    let mut p = RequestParser::default();
    assert_eq!(
        p.parse(b"*11\r\n", MAX_BULK, false),
        Parsed::Error(ProtocolError::UnauthMultibulk)
    );
    assert_eq!(
        p.parse(b"*1\r\n$16385\r\n", MAX_BULK, false),
        Parsed::Error(ProtocolError::UnauthBulk)
    );
    assert!(matches!(
        p.parse(b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n", MAX_BULK, false),
        Parsed::Command { .. }
    ));
}

#[test]
fn error_texts() {
    assert_eq!(
        ProtocolError::InvalidMultibulk.to_string(),
        "ERR Protocol error: invalid multibulk length"
    );
    assert_eq!(
        ProtocolError::InvalidBulk.to_string(),
        "ERR Protocol error: invalid bulk length"
    );
    assert_eq!(
        ProtocolError::ExpectedDollar(b'x').to_string(),
        "ERR Protocol error: expected '$', got 'x'"
    );
    assert_eq!(
        ProtocolError::UnbalancedQuotes.to_string(),
        "ERR Protocol error: unbalanced quotes in request"
    );
    assert_eq!(
        ProtocolError::TooBigInline.to_string(),
        "ERR Protocol error: too big inline request"
    );
}

#[test]
fn random_bytes_never_panic() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"*$\r\n0123456789-abc \"'\\x";
    for _ in 0..20_000 {
        let len = (next() % 40) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let _ = run_split(&input, 1 + (next() % 5) as usize).or_else(|_| Ok::<_, ()>(Vec::new()));
    }
}
