//! MONITOR sees RPC requests too: each operation as the Redis command that
//! does the same (GET, SET ... PX NX, DEL, PEXPIRE, PTTL, INCRBY, MGET,
//! MSET, SCAN, INFO, PLUGIN CALL, HELLO), from the RPC client's address.
//! A batch shows each of its operations. Built only while someone
//! monitors.

use citadel_proto::rpc::{Condition, Op};

use crate::clients::ClientShared;
use crate::state::ServerState;
use crate::thread::ThreadCtx;

/// Feeds `op`'s line to every monitor (a batch: each operation's).
pub fn feed(state: &ServerState, thread: &ThreadCtx, client: &ClientShared, op: &Op<'_>) {
    if let Op::Batch(batch) = op {
        for op in batch.iter().flatten() {
            feed(state, thread, client, &op);
        }
        return;
    }
    let argv = command_of(op);
    let args: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    crate::command::feed_monitor_line(state, thread, client, &args);
}

/// The Redis command line equivalent to `op` (also what proxy mode
/// forwards, `rpc/forward.rs`).
pub(super) fn command_of(op: &Op<'_>) -> Vec<Vec<u8>> {
    let word = |w: &str| w.as_bytes().to_vec();
    let mut argv: Vec<Vec<u8>> = Vec::new();
    match op {
        Op::Get { key } => argv.extend([word("GET"), key.to_vec()]),
        Op::Set {
            key,
            value,
            ttl_ms,
            condition,
        } => {
            argv.extend([word("SET"), key.to_vec(), value.to_vec()]);
            if *ttl_ms > 0 {
                argv.extend([word("PX"), word(&ttl_ms.to_string())]);
            }
            match *condition {
                Condition::Nx => argv.push(word("NX")),
                Condition::Xx => argv.push(word("XX")),
                _ => {}
            }
        }
        Op::Delete(keys) | Op::Exists(keys) | Op::MGet(keys) => {
            let name = match op {
                Op::Delete(_) => "DEL",
                Op::Exists(_) => "EXISTS",
                _ => "MGET",
            };
            argv.push(word(name));
            argv.extend(keys.iter().map(<[u8]>::to_vec));
        }
        // ttl 0 removes the TTL.
        Op::Expire { key, ttl_ms: 0 } => argv.extend([word("PERSIST"), key.to_vec()]),
        Op::Expire { key, ttl_ms } => {
            argv.extend([word("PEXPIRE"), key.to_vec(), word(&ttl_ms.to_string())])
        }
        Op::Ttl { key } => argv.extend([word("PTTL"), key.to_vec()]),
        Op::Incr { key, by } => argv.extend([word("INCRBY"), key.to_vec(), word(&by.to_string())]),
        Op::MSet(pairs) => {
            argv.push(word("MSET"));
            for (k, v) in pairs.iter() {
                argv.extend([k.to_vec(), v.to_vec()]);
            }
        }
        Op::Scan {
            cursor,
            pattern,
            count,
        } => {
            argv.extend([word("SCAN"), word(&cursor.to_string())]);
            if let Some(p) = pattern {
                argv.extend([word("MATCH"), word(p)]);
            }
            argv.extend([word("COUNT"), word(&count.to_string())]);
        }
        Op::Call {
            name,
            payload,
            options,
        } => {
            argv.extend([word("PLUGIN"), word("CALL"), word(name), payload.to_vec()]);
            argv.extend(options.split_whitespace().map(word));
        }
        Op::Stats { section } => {
            argv.push(word("INFO"));
            argv.extend(section.map(word));
        }
        Op::Hello { version, .. } => argv.extend([word("HELLO"), word(&version.to_string())]),
        Op::Batch(_) => {}
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_read_as_redis_commands() {
        let set = Op::Set {
            key: b"k",
            value: b"v",
            ttl_ms: 1500,
            condition: Condition::Nx,
        };
        assert_eq!(
            command_of(&set),
            [&b"SET"[..], b"k", b"v", b"PX", b"1500", b"NX"].map(<[u8]>::to_vec)
        );
        let persist = Op::Expire {
            key: b"k",
            ttl_ms: 0,
        };
        assert_eq!(
            command_of(&persist),
            [&b"PERSIST"[..], b"k"].map(<[u8]>::to_vec)
        );
        let incr = Op::Incr { key: b"n", by: -2 };
        assert_eq!(
            command_of(&incr),
            [&b"INCRBY"[..], b"n", b"-2"].map(<[u8]>::to_vec)
        );
        let scan = Op::Scan {
            cursor: 7,
            pattern: Some("user:*"),
            count: 10,
        };
        assert_eq!(
            command_of(&scan),
            [&b"SCAN"[..], b"7", b"MATCH", b"user:*", b"COUNT", b"10"].map(<[u8]>::to_vec)
        );
    }
}
