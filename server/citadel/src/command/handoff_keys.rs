//! Which keys of a command the warm hand-off must bring here before it
//! runs: the keys it reads, by the command table. Reads (`readonly`),
//! writes that also read or depend on what is there (`write`: INCR,
//! LPUSH, HSET on an existing hash, SET NX/GET/KEEPTTL, EXPIRE ...),
//! scripts' declared KEYS and WATCH's keys; for EXEC, the keys of its
//! queued commands but the watched ones (WATCH brought them, and a
//! restore now would break the watch). A pure overwrite or deletion
//! (Redis's OW / RM key specs with no read: SET without options that
//! read, SETEX, PSETEX, MSET, DEL, UNLINK) needs none: what it leaves
//! does not depend on what was there.

use super::args::Args;
use super::queue::TxState;
use super::table::CommandDef;

/// Calls `f` with each key `def` reads (see the module comment); EXEC's
/// are its queue's (`tx`).
pub fn for_each_read_key<'a>(
    def: &CommandDef,
    args: Args<'a>,
    tx: &'a TxState,
    f: &mut dyn FnMut(&'a [u8]),
) {
    if tx.in_multi && def.name == "watch" {
        // Refused there: nothing to bring.
        return;
    }
    if def.name == "exec" {
        if tx.dirty {
            return;
        }
        for i in 0..tx.len() {
            let (_, def, args) = tx.command(i);
            if reads(def, args) {
                def.for_each_key(args, |key| {
                    if !tx.watched_keys().any(|w| w == key) {
                        f(key)
                    }
                });
            }
        }
    } else if reads(def, args) {
        def.for_each_key(args, f);
    }
}

/// Whether `def` run with `args` reads its keys.
fn reads(def: &CommandDef, args: Args<'_>) -> bool {
    let keyed = def.has_flag("readonly")
        || def.has_flag("write")
        || def.group == "scripting"
        || def.name == "watch";
    keyed && !overwrites(def, args)
}

/// A write whose result does not depend on what its keys held.
fn overwrites(def: &CommandDef, args: Args<'_>) -> bool {
    match def.name {
        "setex" | "psetex" | "mset" | "del" | "unlink" => true,
        // SET k v [EX s | PX ms | EXAT t | PXAT t]; NX, XX, GET and
        // KEEPTTL depend on the key.
        "set" => {
            !(3..args.len()).any(|i| ["nx", "xx", "get", "keepttl"].iter().any(|o| args.is(i, o)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::table::lookup;

    fn read_keys(line: &[&str]) -> Vec<String> {
        let (mut buf, mut spans) = (Vec::new(), Vec::new());
        for word in line {
            spans.push(buf.len()..buf.len() + word.len());
            buf.extend_from_slice(word.as_bytes());
        }
        let args = Args::new(&buf, &spans);
        let (_, def) = lookup(args.get(0)).unwrap();
        let tx = TxState::default();
        let mut keys = Vec::new();
        for_each_read_key(def, args, &tx, &mut |k| {
            keys.push(String::from_utf8_lossy(k).into_owned())
        });
        keys
    }

    #[test]
    fn reads_and_read_modify_writes_hand_off_overwrites_do_not() {
        assert_eq!(read_keys(&["GET", "a"]), ["a"]);
        assert_eq!(read_keys(&["HGETALL", "h"]), ["h"]);
        assert_eq!(read_keys(&["INCR", "n"]), ["n"]);
        assert_eq!(read_keys(&["LPUSH", "l", "x"]), ["l"]);
        assert_eq!(read_keys(&["SET", "a", "1", "GET"]), ["a"]);
        assert_eq!(read_keys(&["set", "a", "1", "nx"]), ["a"]);
        assert_eq!(
            read_keys(&["EVALSHA", "f00", "2", "a", "b", "c"]),
            ["a", "b"]
        );
        assert_eq!(read_keys(&["WATCH", "a", "b"]), ["a", "b"]);
        assert!(read_keys(&["SET", "a", "1", "EX", "5"]).is_empty());
        assert!(read_keys(&["DEL", "a", "b"]).is_empty());
        assert!(read_keys(&["MSET", "a", "1", "b", "2"]).is_empty());
        assert!(read_keys(&["PING"]).is_empty());
    }
}
