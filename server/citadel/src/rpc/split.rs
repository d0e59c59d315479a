//! Proxy mode for the RPC's multi-key operations (delete, exists, mget,
//! mset) whose keys are in several slots: as RESP's split commands
//! (`command/proxy.rs`), the keys are grouped by node, this node's piece
//! runs now and each other node gets one Redis command with its keys over
//! the forwarder; the answers are merged in key order when the last comes
//! (counts summed, values placed, mset done when every node said OK; not
//! atomic across nodes).

use citadel_cluster::Route;
use citadel_proto::cluster::key_slot;
use citadel_proto::rpc::{Body, Method, Op, ReplyWriter};

use super::forward::{check_reply, reply_failed, submit};
use super::route::for_each_key;
use super::RpcError;
use crate::command::{mark_written, proxy_enabled};
use crate::forward::reply::{bulk, elements, integer};
use crate::forward::{encode_command, Part, PartResult};
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::WaitKey;

/// What a split waits for: which keys each part carries, and the local
/// piece's result.
#[derive(Debug)]
pub struct Split {
    keys: usize,
    parts: Vec<Vec<usize>>,
    local: Local,
}

#[derive(Debug)]
enum Local {
    /// delete / exists: this node's count.
    Count(i64),
    /// mget: this node's values, by key position.
    Values(Vec<(usize, Option<Vec<u8>>)>),
    /// mset: this node's pairs are written.
    Written,
}

/// How a split went on.
pub enum Started {
    /// Every key is this node's (in several slots): answered now.
    Now(Body),
    /// Parts are forwarded: the answer comes with this key's completion.
    Waiting(WaitKey, Box<Split>),
}

/// Whether `op` can be split over nodes in proxy mode.
pub fn splittable(state: &ServerState, op: &Op<'_>) -> bool {
    matches!(
        op,
        Op::Delete(_) | Op::Exists(_) | Op::MGet(_) | Op::MSet(_)
    ) && proxy_enabled(state)
}

/// Splits `op` (see `splittable`) by the node of each key.
pub fn start(
    state: &ServerState,
    thread: &mut ThreadCtx,
    writer: &mut ReplyWriter,
    op: &Op<'_>,
) -> Result<Started, RpcError> {
    let mut keys: Vec<&[u8]> = Vec::new();
    for_each_key(op, |k| keys.push(k));
    let (local, remote) = group(thread, &keys)?;
    if !matches!(op, Op::Exists(_) | Op::MGet(_)) {
        mark_written(state, thread, |mark| {
            local.iter().for_each(|&i| mark(keys[i]))
        });
    }
    let cache = &mut thread.cache;
    let local = match op {
        Op::Delete(_) => {
            Local::Count(local.iter().filter(|&&i| cache.delete(keys[i])).count() as i64)
        }
        Op::Exists(_) => {
            let n = local
                .iter()
                .filter(|&&i| cache.peek(keys[i], |_| ()).is_some());
            Local::Count(n.count() as i64)
        }
        Op::MGet(_) => Local::Values(
            local
                .iter()
                .map(|&i| {
                    let mut value = Vec::new();
                    let found = cache.get(keys[i], |item| {
                        value.clear();
                        item.write_value_to(&mut value);
                    });
                    (i, found.map(|_| value))
                })
                .collect(),
        ),
        Op::MSet(pairs) => {
            let pairs: Vec<(&[u8], &[u8])> = pairs.iter().collect();
            for &i in &local {
                cache.set(pairs[i].0, pairs[i].1, None)?;
            }
            Local::Written
        }
        _ => return Err(RpcError::CrossSlot),
    };
    let mut split = Split {
        keys: keys.len(),
        parts: Vec::with_capacity(remote.len()),
        local,
    };
    if remote.is_empty() {
        return merge(writer, split, Vec::new()).map(Started::Now);
    }
    let Some(forwarder) = state.forwarder.get() else {
        return Err(RpcError::CrossSlot);
    };
    let words = command_words(op);
    let mut parts = Vec::with_capacity(remote.len());
    for (addr, positions) in remote {
        let mut request = Vec::new();
        let piece = positions
            .iter()
            .flat_map(|&i| words.args(i).iter().copied());
        let count = 1 + positions.len() * words.per_key;
        encode_command(
            &mut request,
            count,
            std::iter::once(words.name).chain(piece),
        );
        parts.push(Part {
            addr,
            request,
            replies: 1,
            tracked: None,
        });
        split.parts.push(positions);
    }
    let key = submit(forwarder, thread, parts);
    Ok(Started::Waiting(key, Box::new(split)))
}

/// Key positions served here, and per other node (RESP address) its own.
type Groups = (Vec<usize>, Vec<(String, Vec<usize>)>);

fn group(thread: &mut ThreadCtx, keys: &[&[u8]]) -> Result<Groups, RpcError> {
    let Some(view) = thread.cluster.as_mut() else {
        return Err(RpcError::CrossSlot);
    };
    let topology = view.current();
    let (mut local, mut remote) = (Vec::new(), Vec::<(String, Vec<usize>)>::new());
    for (i, key) in keys.iter().enumerate() {
        match topology.route(key_slot(key)) {
            Route::Local => local.push(i),
            Route::Moved(owner) => match remote.iter_mut().find(|(a, _)| *a == owner.addr) {
                Some((_, positions)) => positions.push(i),
                None => remote.push((owner.addr.clone(), vec![i])),
            },
            Route::Down => return Err(RpcError::ClusterDown),
        }
    }
    Ok((local, remote))
}

/// The Redis command of a split operation and its per-key words.
struct Words<'a> {
    name: &'static [u8],
    per_key: usize,
    words: Vec<&'a [u8]>,
}

impl<'a> Words<'a> {
    fn args(&self, key: usize) -> &[&'a [u8]] {
        &self.words[key * self.per_key..(key + 1) * self.per_key]
    }
}

fn command_words<'a>(op: &Op<'a>) -> Words<'a> {
    let keys = |name, keys: &citadel_proto::rpc::Keys<'a>| Words {
        name,
        per_key: 1,
        words: keys.iter().collect(),
    };
    match op {
        Op::Delete(k) => keys(b"DEL", k),
        Op::Exists(k) => keys(b"EXISTS", k),
        Op::MGet(k) => keys(b"MGET", k),
        Op::MSet(pairs) => Words {
            name: b"MSET",
            per_key: 2,
            words: pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        },
        _ => Words {
            name: b"",
            per_key: 0,
            words: Vec::new(),
        },
    }
}

/// The answer of a split: its local piece and each part's reply merged.
pub fn finished(
    writer: &mut ReplyWriter,
    method: Method,
    split: Split,
    results: Vec<PartResult>,
) -> Result<Body, RpcError> {
    if results.len() != split.parts.len() {
        return Err(reply_failed(method));
    }
    let mut replies = Vec::with_capacity(results.len());
    for result in results {
        replies.push(check_reply(result)?);
    }
    merge(writer, split, replies)
}

fn merge(writer: &mut ReplyWriter, split: Split, replies: Vec<Vec<u8>>) -> Result<Body, RpcError> {
    let unexpected = || reply_failed(Method::MGet);
    Ok(match split.local {
        Local::Count(mut n) => {
            for reply in &replies {
                n += integer(reply).ok_or_else(unexpected)?;
            }
            writer.int(n)
        }
        Local::Written => {
            if replies.iter().any(|r| r != b"+OK\r\n") {
                return Err(unexpected());
            }
            writer.done(true)
        }
        Local::Values(local) => {
            let mut values: Vec<Option<&[u8]>> = vec![None; split.keys];
            for (i, value) in &local {
                values[*i] = value.as_deref();
            }
            for (reply, positions) in replies.iter().zip(&split.parts) {
                let items = elements(reply).filter(|e| e.len() == positions.len());
                for (item, &i) in items.ok_or_else(unexpected)?.into_iter().zip(positions) {
                    values[i] = bulk(item);
                }
            }
            writer.values(values)
        }
    })
}
