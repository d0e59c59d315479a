//! Stream arguments as Redis 7.0 parses them: IDs (strict, interval) and
//! the trimming options XADD and XTRIM share.

use citadel_collections::stream::id::Seq;
use citadel_collections::stream::{parse_id, StreamId, Trim, TrimArgs};
use citadel_resp::num;

use crate::command::args::Args;
use crate::command::error::CmdError;

pub const INVALID_ID: CmdError =
    CmdError::Static("ERR Invalid stream ID specified as stream command argument");

/// An ID where `-` and `+` are not allowed; a missing sequence is `missing_seq`.
pub fn strict_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, CmdError> {
    match parse_id(arg, false) {
        Some((ms, Seq::Given(seq))) => Ok(StreamId::new(ms, seq)),
        Some((ms, _)) => Ok(StreamId::new(ms, missing_seq)),
        None => Err(INVALID_ID),
    }
}

/// A range bound: `-`, `+`, an ID, or `(`ID (exclusive: moved one on,
/// towards the range's inside). `start`: the lower bound.
pub fn interval_id(arg: &[u8], start: bool) -> Result<StreamId, CmdError> {
    let missing_seq = if start { 0 } else { u64::MAX };
    if arg.len() > 1 && arg[0] == b'(' {
        let id = strict_id(&arg[1..], missing_seq)?;
        let moved = if start { id.next() } else { id.prev() };
        return moved.ok_or(CmdError::Static(if start {
            "ERR invalid start ID for the interval"
        } else {
            "ERR invalid end ID for the interval"
        }));
    }
    match arg {
        b"-" => Ok(StreamId::MIN),
        b"+" => Ok(StreamId::MAX),
        _ => strict_id(arg, missing_seq),
    }
}

/// A non-negative integer argument with Redis's own error text.
fn long_long(arg: &[u8]) -> Result<i64, CmdError> {
    num::parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// The ID XADD was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewId {
    Auto,
    /// `ms-*`.
    AutoSeq(u64),
    Given(StreamId),
}

/// XADD's and XTRIM's options.
#[derive(Clone, Copy, Debug)]
pub struct AddArgs {
    pub trim: Option<TrimArgs>,
    pub no_mkstream: bool,
    pub id: NewId,
    /// Index of the first field (XADD).
    pub fields_at: usize,
}

/// Redis's `streamParseAddOrTrimArgsOrReply`.
pub fn add_or_trim(args: &Args<'_>, xadd: bool) -> Result<AddArgs, CmdError> {
    let mut trim: Option<Trim> = None;
    let mut approx = false;
    let mut limit: Option<i64> = None;
    let mut out = AddArgs {
        trim: None,
        no_mkstream: false,
        id: NewId::Auto,
        fields_at: args.len() + 1,
    };
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = args.get(i);
        if xadd && opt == b"*" {
            out.fields_at = i + 1;
            break;
        } else if (args.is(i, "maxlen") || args.is(i, "minid")) && more > 0 {
            if trim.is_some() {
                return Err(CmdError::Static(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            let maxlen = args.is(i, "maxlen");
            approx = false;
            let next = args.get(i + 1);
            if more >= 2 && next == b"~" {
                approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            trim = Some(if maxlen {
                let n = long_long(args.get(i + 1))?;
                if n < 0 {
                    return Err(CmdError::Static("ERR The MAXLEN argument must be >= 0."));
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(strict_id(args.get(i + 1), 0)?)
            });
            i += 1;
        } else if args.is(i, "limit") && more > 0 {
            let n = long_long(args.get(i + 1))?;
            if n < 0 {
                return Err(CmdError::Static("ERR The LIMIT argument must be >= 0."));
            }
            limit = Some(n);
            i += 1;
        } else if xadd && args.is(i, "nomkstream") {
            out.no_mkstream = true;
        } else if xadd {
            out.id = match parse_id(opt, true) {
                Some((ms, Seq::Star)) => NewId::AutoSeq(ms),
                Some((ms, Seq::Given(seq))) => NewId::Given(StreamId::new(ms, seq)),
                Some((ms, Seq::Missing)) => NewId::Given(StreamId::new(ms, 0)),
                None => return Err(INVALID_ID),
            };
            out.fields_at = i + 1;
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if limit.is_some_and(|l| l != 0) && trim.is_none() {
        return Err(CmdError::Static(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && trim.is_none() {
        return Err(CmdError::Static(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    let limit = match limit {
        Some(_) if !approx => {
            return Err(CmdError::Static(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ))
        }
        Some(l) => l as u64,
        // Redis's default: 100 * stream-node-max-entries (0: no limit).
        None if approx => {
            100u64.saturating_mul(citadel_collections::stream::node_max_entries_setting())
        }
        None => 0,
    };
    out.trim = trim.map(|trim| TrimArgs {
        trim,
        approx,
        limit,
    });
    Ok(out)
}
