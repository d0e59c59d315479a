//! The cache operations of the RPC front door: each runs against this
//! thread's cache handle and builds its reply in the connection's
//! `ReplyWriter`. Semantics follow the Redis commands they mirror (SET NX
//! / XX, EXPIRE, INCRBY, MSET atomic over all its keys, SCAN's cursor).

use std::ops::Range;
use std::sync::Arc;

use citadel_cache::{CacheHandle, ValueKind, WriteError};
use citadel_proto::rpc::{Body, Condition, Constant, Method, Op, ReplyWriter, StatValue};

use super::RpcError;
use crate::command::{add_to_integer, get_string, glob_match, info_text, put_value};
use crate::state::ServerState;

/// SCAN's page size when the request leaves it at 0 (as Redis's COUNT).
const DEFAULT_SCAN_COUNT: usize = 10;
/// Keys gathered on the stack by a multi-key write before it allocates.
const ON_STACK: usize = 16;

/// Values and keys copied out of the cache for one reply (MGET, SCAN,
/// a batched GET), reused by the connection.
#[derive(Default)]
pub struct Scratch {
    pub bytes: Vec<u8>,
    pub spans: Vec<Option<Range<usize>>>,
}

impl Scratch {
    fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
        if self.bytes.capacity() > 1 << 20 {
            // Do not keep a huge batch's buffer for the connection's life.
            self.bytes = Vec::new();
        }
    }

    fn items(&self) -> impl Iterator<Item = Option<&[u8]>> {
        self.spans.iter().map(|s| s.clone().map(|r| &self.bytes[r]))
    }
}

/// What an operation runs with.
pub struct Exec<'a> {
    pub state: &'a Arc<ServerState>,
    pub cache: &'a mut CacheHandle,
    pub writer: &'a mut ReplyWriter,
    pub scratch: &'a mut Scratch,
}

/// Appends the reply frame of a GET to `out`. A hit is laid out by hand
/// and its value copied once, from the cache into the send buffer. A
/// collection is a WRONGTYPE error (nothing written).
pub fn get_frame(
    cache: &mut CacheHandle,
    key: &[u8],
    id: u64,
    out: &mut Vec<u8>,
) -> Result<(), RpcError> {
    let mark = out.len();
    let hit = get_string(cache, key, |item| {
        // A retried read starts over.
        out.truncate(mark);
        let len = item.value_len();
        ReplyWriter::begin_value(out, id, Method::Get, len);
        item.write_value_to(out);
        ReplyWriter::end_value(out, len);
    });
    if !matches!(hit, Ok(Some(()))) {
        out.truncate(mark);
    }
    if hit?.is_none() {
        ReplyWriter::constant_frame(out, id, Method::Get, Constant::NoValue);
    }
    Ok(())
}

/// Runs a cache operation (anything but `call`, `hello` and `batch`).
pub fn run(x: &mut Exec<'_>, op: &Op<'_>) -> Result<Body, RpcError> {
    let now = x.cache.now_ms();
    let expiry = |ttl_ms: u64| (ttl_ms > 0).then(|| now.saturating_add(ttl_ms));
    Ok(match *op {
        Op::Get { key } => {
            x.scratch.clear();
            let bytes = &mut x.scratch.bytes;
            let found = get_string(x.cache, key, |item| {
                bytes.clear();
                item.write_value_to(bytes);
            })?;
            x.writer.value(found.map(|_| &x.scratch.bytes[..]))
        }
        Op::Set {
            key,
            value,
            ttl_ms,
            condition,
        } => x.writer.done(set(x.cache, key, value, ttl_ms, condition)?),
        Op::Delete(keys) => {
            let n = keys.iter().filter(|k| x.cache.delete(k)).count();
            x.writer.int(n as i64)
        }
        Op::Exists(keys) => {
            let n = keys
                .iter()
                .filter(|k| x.cache.peek(k, |_| ()).is_some())
                .count();
            x.writer.int(n as i64)
        }
        Op::Expire { key, ttl_ms } => {
            let applied = x.cache.update(&[key], |items, changes| {
                let Some(item) = &items[0] else {
                    return Ok(false);
                };
                // ttl 0 removes the TTL (PERSIST).
                put_value(changes, 0, item, None, expiry(ttl_ms))?;
                Ok::<_, WriteError>(true)
            })??;
            x.writer.done(applied)
        }
        Op::Ttl { key } => {
            let left = match x.cache.peek(key, |item| item.expire_at()) {
                None => -2,
                Some(None) => -1,
                Some(Some(at)) => at.saturating_sub(now) as i64,
            };
            x.writer.int(left)
        }
        Op::Incr { key, by } => x.writer.int(add_to_integer(x.cache, key, by)?),
        Op::MGet(keys) => {
            x.scratch.clear();
            for key in keys.iter() {
                let start = x.scratch.bytes.len();
                let bytes = &mut x.scratch.bytes;
                // As Redis's MGET: a collection reads as no value.
                let found = x.cache.get(key, |item| {
                    bytes.truncate(start);
                    if item.kind() == ValueKind::String {
                        item.write_value_to(bytes);
                    }
                    item.kind() == ValueKind::String
                });
                let found = found.filter(|is_string| *is_string);
                x.scratch
                    .spans
                    .push(found.map(|_| start..x.scratch.bytes.len()));
            }
            x.writer.values(x.scratch.items())
        }
        Op::MSet(pairs) => {
            mset(x.cache, pairs)?;
            x.writer.done(true)
        }
        Op::Scan {
            cursor,
            pattern,
            count,
        } => {
            x.scratch.clear();
            let count = if count == 0 {
                DEFAULT_SCAN_COUNT
            } else {
                count as usize
            };
            let (bytes, spans) = (&mut x.scratch.bytes, &mut x.scratch.spans);
            let next = x.cache.scan(cursor, count, |item| {
                let start = bytes.len();
                item.key().append_to(bytes);
                if pattern.is_none_or(|p| glob_match(p.as_bytes(), &bytes[start..])) {
                    spans.push(Some(start..bytes.len()));
                } else {
                    bytes.truncate(start);
                }
            });
            x.writer
                .scan_page(next, x.scratch.items().map(|k| k.unwrap_or_default()))
        }
        Op::Stats { section } => stats(x.state, x.writer, section),
        Op::Call { .. } => return Err(RpcError::NotInBatch("call")),
        Op::Hello { .. } => return Err(RpcError::NotInBatch("hello")),
        Op::Batch(_) => return Err(RpcError::NotInBatch("batch")),
    })
}

/// SET with its condition and TTL (0: none); true when written.
pub fn set(
    cache: &mut CacheHandle,
    key: &[u8],
    value: &[u8],
    ttl_ms: u64,
    condition: Condition,
) -> Result<bool, RpcError> {
    let expire_at = (ttl_ms > 0).then(|| cache.now_ms().saturating_add(ttl_ms));
    if condition == Condition::Always {
        cache.set(key, value, expire_at)?;
        return Ok(true);
    }
    let only_new = condition == Condition::Nx;
    let written = cache.update(&[key], |items, changes| {
        if items[0].is_some() == only_new {
            return Ok(false);
        }
        changes.put(0, &[value], expire_at)?;
        Ok::<_, WriteError>(true)
    })??;
    Ok(written)
}

/// MSET: every pair written atomically (one update over all keys); up to
/// 16 keys are gathered on the stack.
fn mset(cache: &mut CacheHandle, pairs: citadel_proto::rpc::Pairs<'_>) -> Result<(), RpcError> {
    let n = pairs.len();
    let mut stack: [&[u8]; ON_STACK] = [&[]; ON_STACK];
    let heap: Vec<&[u8]>;
    let keys: &[&[u8]] = if n <= ON_STACK {
        for (slot, (key, _)) in stack.iter_mut().zip(pairs.iter()) {
            *slot = key;
        }
        &stack[..n]
    } else {
        heap = pairs.iter().map(|(k, _)| k).collect();
        &heap
    };
    cache.update(keys, |_, changes| {
        for (i, (_, value)) in pairs.iter().enumerate() {
            changes.put(i, &[value], None)?;
        }
        Ok::<_, WriteError>(())
    })??;
    Ok(())
}

/// INFO's numbers as name/value pairs: `section` as INFO's argument
/// (absent: INFO's default sections).
fn stats(state: &ServerState, writer: &mut ReplyWriter, section: Option<&str>) -> Body {
    let text = info_text(state, |name, default| match section {
        None | Some("") => default,
        Some(s) => s.eq_ignore_ascii_case(name) || s.eq_ignore_ascii_case("all"),
    });
    let pairs = text.lines().filter_map(|line| {
        let (name, value) = line.split_once(':')?;
        Some(match value.parse::<i64>() {
            Ok(n) => (name, StatValue::Int(n)),
            Err(_) => (name, StatValue::Text(value)),
        })
    });
    writer.stats(pairs)
}
