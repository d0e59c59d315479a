//! Every error a command can answer, and the one place that turns them into
//! reply lines. Operation-specific errors convert into [`CmdError`].

use std::io::Write;

use citadel_cache::WriteError;

use citadel_resp::{ProtocolError, Reply};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CmdError {
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(&'static str),
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR decrement would overflow")]
    DecrementOverflow,
    #[error("ERR hash value is not an integer")]
    HashNotInteger,
    #[error("ERR hash value is not a float")]
    HashNotFloat,
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
    #[error("ERR invalid expire time in '{0}' command")]
    ExpireTime(&'static str),
    #[error("ERR NX and XX, GT or LT options at the same time are not compatible")]
    ExpireNxConflict,
    #[error("ERR GT and LT options at the same time are not compatible")]
    ExpireGtLt,
    #[error("ERR Unsupported option {0}")]
    UnsupportedOption(String),
    #[error("ERR no such key")]
    NoSuchKey,
    /// CLIENT TRACKING BCAST: two of a client's prefixes overlap.
    #[error("ERR Prefix '{prefix}' overlaps with {which} prefix '{other}'. Prefixes for a single client must not overlap.")]
    PrefixOverlap {
        prefix: String,
        which: &'static str,
        other: String,
    },
    #[error("ERR offset is out of range")]
    Offset,
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    #[error("ERR invalid cursor")]
    Cursor,
    #[error("ERR DB index is out of range")]
    DbIndex,
    #[error("ERR source and destination objects are the same")]
    SameObject,
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("NOPERM this user has no permissions to run the '{0}' command")]
    NoPermCommand(&'static str),
    #[error("NOPERM this user has no permissions to access one of the keys used as arguments")]
    NoPermKey,
    #[error("NOPERM this user has no permissions to access one of the channels used as arguments")]
    NoPermChannel,
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    #[error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")]
    NoPasswordSet,
    #[error("ERR value of {len} bytes is too large (maximum {max} bytes)")]
    ValueTooLarge { len: u64, max: u64 },
    #[error("ERR key of {len} bytes is too large (maximum {max} bytes)")]
    KeyTooLarge { len: u64, max: u64 },
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    OutOfMemory,
    #[error("ERR bit offset is not an integer or out of range")]
    BitOffset,
    #[error("ERR bit is not an integer or out of range")]
    BitValue,
    #[error("ERR The bit argument must be 1 or 0.")]
    BitArgument,
    #[error("ERR BITOP NOT must be called with a single source key.")]
    BitopNotArity,
    #[error("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")]
    BitfieldType,
    #[error("ERR Invalid OVERFLOW type specified")]
    OverflowType,
    #[error("ERR BITFIELD_RO only supports the GET subcommand")]
    BitfieldReadOnly,
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// A stored collection that does not parse (`citadel_collections::Corrupt`).
    #[error("ERR corrupt collection value")]
    CorruptValue,
    #[error("WRONGTYPE Key is not a valid HyperLogLog string value.")]
    NotHll,
    #[error("INVALIDOBJ Corrupted HLL object detected")]
    CorruptHll,
    /// Cluster mode: the slot's owner is another node (`redirect.rs`).
    #[error("MOVED {slot} {addr}")]
    Moved { slot: u16, addr: String },
    #[error("CROSSSLOT Keys in request don't hash to the same slot")]
    CrossSlot,
    #[error("CLUSTERDOWN The cluster is down")]
    ClusterDown,
    #[error("ERR This instance has cluster support disabled")]
    ClusterDisabled,
    /// The per-key write limit (`hotkeys-write-limit`) refused a write.
    #[error("OVERLOAD key write rate over {0}/s for this key, retry later")]
    KeyWriteRate(u64),
    /// Errors whose text is fixed but used by one command only.
    #[error("{0}")]
    Static(&'static str),
    /// Rare errors that quote an argument (CONFIG, CLIENT, HELLO ...).
    #[error("{0}")]
    Text(String),
}

impl From<WriteError> for CmdError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::ValueTooLarge { len, max } => CmdError::ValueTooLarge { len, max },
            WriteError::KeyTooLarge { len, max } => CmdError::KeyTooLarge { len, max },
            WriteError::OutOfMemory { .. } => CmdError::OutOfMemory,
        }
    }
}

impl CmdError {
    /// An error text that quotes client bytes (lossily, as text).
    pub fn quoting(prefix: &str, arg: &[u8], suffix: &str) -> Self {
        CmdError::Text(format!("{prefix}{}{suffix}", String::from_utf8_lossy(arg)))
    }

    /// Redis's addReplySubcommandSyntaxError: the subcommand as sent (its
    /// first 128 bytes), the command upper-cased.
    pub fn subcommand_syntax(command: &str, sub: &[u8]) -> Self {
        let sub = String::from_utf8_lossy(&sub[..sub.len().min(128)]);
        let command = command.to_ascii_uppercase();
        CmdError::Text(format!(
            "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {command} HELP."
        ))
    }
}

pub type CmdResult = Result<(), CmdError>;

/// Writes `-<message>\r\n`; CR/LF inside the message become spaces.
fn write_line(out: &mut Reply<'_>, msg: impl std::fmt::Display) {
    let start = out.buf.len() + 1;
    out.buf.push(b'-');
    let _ = write!(out.buf, "{msg}");
    for c in &mut out.buf[start..] {
        if *c == b'\r' || *c == b'\n' {
            *c = b' ';
        }
    }
    out.buf.extend_from_slice(b"\r\n");
}

pub fn reply_error(out: &mut Reply<'_>, e: &CmdError) {
    write_line(out, e);
}

pub fn reply_protocol_error(out: &mut Reply<'_>, e: ProtocolError) {
    write_line(out, e);
}

/// Appends `'<arg>' ` quoting at most `room` bytes, as Redis's `%.*s`.
fn quote_into(out: &mut Vec<u8>, arg: &[u8], room: usize) {
    out.push(b'\'');
    let arg = arg.split(|&c| c == 0).next().unwrap_or(&[]);
    out.extend_from_slice(&arg[..arg.len().min(room)]);
    out.extend_from_slice(b"' ");
}

/// `-ERR unknown command 'foo', with args beginning with: 'a' 'b' `
pub fn reply_unknown_command<'a>(
    out: &mut Reply<'_>,
    name: &[u8],
    args: impl Iterator<Item = &'a [u8]>,
) {
    let start = out.buf.len() + 1;
    out.buf.extend_from_slice(b"-ERR unknown command '");
    out.buf.extend_from_slice(&name[..name.len().min(128)]);
    out.buf.extend_from_slice(b"', with args beginning with: ");
    let args_start = out.buf.len();
    for arg in args {
        let used = out.buf.len() - args_start;
        if used >= 128 {
            break;
        }
        quote_into(out.buf, arg, 128 - used);
    }
    sanitize_tail(out, start);
}

/// `-ERR unknown subcommand 'foo'. Try CLIENT HELP.`
pub fn reply_unknown_subcommand(out: &mut Reply<'_>, container: &str, sub: &[u8]) {
    let start = out.buf.len() + 1;
    out.buf.extend_from_slice(b"-ERR unknown subcommand '");
    out.buf.extend_from_slice(&sub[..sub.len().min(128)]);
    out.buf.extend_from_slice(b"'. Try ");
    out.buf
        .extend(container.bytes().map(|c| c.to_ascii_uppercase()));
    out.buf.extend_from_slice(b" HELP.");
    sanitize_tail(out, start);
}

fn sanitize_tail(out: &mut Reply<'_>, start: usize) {
    for c in &mut out.buf[start..] {
        if *c == b'\r' || *c == b'\n' {
            *c = b' ';
        }
    }
    out.buf.extend_from_slice(b"\r\n");
}
