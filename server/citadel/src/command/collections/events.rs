//! Keyspace events of the collection commands (Redis's names and
//! classes). A write that empties a collection publishes its event, then
//! `del` (`key_events` adds that).

use citadel_settings::key_events as class;

use crate::command::args::Args;

/// (command, event, class) for the commands whose event their name alone
/// decides (LMOVE, RPOPLPUSH, LMPOP, ZMPOP, SMOVE and ZADD ... INCR
/// depend on their arguments: `argument_events`).
const EVENTS: &[(&str, &str, u32)] = &[
    ("hset", "hset", class::HASH),
    ("hmset", "hset", class::HASH),
    ("hsetnx", "hset", class::HASH),
    ("hdel", "hdel", class::HASH),
    ("hincrby", "hincrby", class::HASH),
    ("hincrbyfloat", "hincrbyfloat", class::HASH),
    ("lpush", "lpush", class::LIST),
    ("lpushx", "lpush", class::LIST),
    ("rpush", "rpush", class::LIST),
    ("rpushx", "rpush", class::LIST),
    ("lpop", "lpop", class::LIST),
    ("rpop", "rpop", class::LIST),
    ("linsert", "linsert", class::LIST),
    ("lset", "lset", class::LIST),
    ("lrem", "lrem", class::LIST),
    ("ltrim", "ltrim", class::LIST),
    ("sadd", "sadd", class::SET),
    ("srem", "srem", class::SET),
    ("spop", "spop", class::SET),
    ("sinterstore", "sinterstore", class::SET),
    ("sunionstore", "sunionstore", class::SET),
    ("sdiffstore", "sdiffstore", class::SET),
    // ZADD ... INCR publishes `zincr` (`argument_events`).
    ("zadd", "zadd", class::ZSET),
    ("zincrby", "zincr", class::ZSET),
    ("zrem", "zrem", class::ZSET),
    ("zremrangebyscore", "zremrangebyscore", class::ZSET),
    ("zremrangebyrank", "zremrangebyrank", class::ZSET),
    ("zremrangebylex", "zremrangebylex", class::ZSET),
    ("zpopmin", "zpopmin", class::ZSET),
    ("zpopmax", "zpopmax", class::ZSET),
    ("bzpopmin", "zpopmin", class::ZSET),
    ("bzpopmax", "zpopmax", class::ZSET),
    ("zunionstore", "zunionstore", class::ZSET),
    ("zinterstore", "zinterstore", class::ZSET),
    ("zdiffstore", "zdiffstore", class::ZSET),
    ("zrangestore", "zrangestore", class::ZSET),
    // GEOADD runs ZADD; the searches change only their STORE key.
    ("geoadd", "zadd", class::ZSET),
    ("geosearchstore", "geosearchstore", class::ZSET),
    ("xadd", "xadd", class::STREAM),
    ("xtrim", "xtrim", class::STREAM),
    ("xdel", "xdel", class::STREAM),
    ("xsetid", "xsetid", class::STREAM),
    ("xgroup|create", "xgroup-create", class::STREAM),
    ("xgroup|setid", "xgroup-setid", class::STREAM),
    ("xgroup|destroy", "xgroup-destroy", class::STREAM),
    (
        "xgroup|createconsumer",
        "xgroup-createconsumer",
        class::STREAM,
    ),
    ("xgroup|delconsumer", "xgroup-delconsumer", class::STREAM),
    ("georadius", "georadiusstore", class::ZSET),
    ("georadiusbymember", "georadiusstore", class::ZSET),
];

/// The event and class of a change collection command `name` made.
pub fn event(name: &str) -> Option<(&'static str, u32)> {
    EVENTS
        .iter()
        .find(|(command, _, _)| *command == name)
        .map(|&(_, event, class)| (event, class))
}

/// Whether `name`'s events depend on its arguments (`argument_events`).
pub fn depends_on_arguments(name: &str) -> bool {
    matches!(
        name,
        "lmove"
            | "blmove"
            | "rpoplpush"
            | "brpoplpush"
            | "smove"
            | "lmpop"
            | "blmpop"
            | "zmpop"
            | "bzmpop"
            | "zadd"
    )
}

/// Up to two events for one key (LMOVE from a list onto itself: the push,
/// then the pop, as Redis publishes them).
pub type KeyEvents = [Option<(&'static str, u32)>; 2];

/// The events of commands whose event depends on their arguments, for
/// `key` changed by command `name` run with `args`, and whether they come
/// after the command's other keys' (a list move publishes the push onto
/// its destination first, as Redis does); None when the name alone
/// decides (`event`).
pub fn argument_events(name: &str, args: Args<'_>, key: &[u8]) -> Option<(KeyEvents, bool)> {
    let events = events_for(name, args, key)?;
    let list_move = matches!(name, "lmove" | "blmove" | "rpoplpush" | "brpoplpush");
    let source_only = key == args.get(1) && key != args.get(2);
    Some((events, list_move && source_only))
}

fn events_for(name: &str, args: Args<'_>, key: &[u8]) -> Option<KeyEvents> {
    let list = |e| Some((e, class::LIST));
    let end = |arg: &[u8], head, tail| {
        if arg.eq_ignore_ascii_case(b"left") {
            list(head)
        } else {
            list(tail)
        }
    };
    // The events of a move's source and destination (`first` is
    // published first when both are this key).
    let moved = |first, second, first_is_source: bool| -> KeyEvents {
        let (src, dst) = (args.get(1), args.get(2));
        let is = |source: bool| key == if source { src } else { dst };
        [
            is(first_is_source).then_some(first).flatten(),
            is(!first_is_source).then_some(second).flatten(),
        ]
    };
    // The direction word after `numkeys` keys (LMPOP, ZMPOP; `at`: the
    // index of numkeys).
    let direction = |at: usize| {
        let keys = std::str::from_utf8(args.get(at))
            .ok()
            .and_then(|n| n.parse::<usize>().ok())?;
        Some(args.get(at + 1 + keys))
    };
    Some(match name {
        "lmove" | "blmove" => moved(
            end(args.get(4), "lpush", "rpush"),
            end(args.get(3), "lpop", "rpop"),
            false,
        ),
        "rpoplpush" | "brpoplpush" => moved(list("lpush"), list("rpop"), false),
        "smove" => moved(Some(("srem", class::SET)), Some(("sadd", class::SET)), true),
        "lmpop" | "blmpop" => {
            let at = if name == "lmpop" { 1 } else { 2 };
            [end(direction(at)?, "lpop", "rpop"), None]
        }
        "zmpop" | "bzmpop" => {
            let at = if name == "zmpop" { 1 } else { 2 };
            let event = if direction(at)?.eq_ignore_ascii_case(b"min") {
                "zpopmin"
            } else {
                "zpopmax"
            };
            [Some((event, class::ZSET)), None]
        }
        "zadd" => {
            const OPTIONS: [&str; 6] = ["nx", "xx", "gt", "lt", "ch", "incr"];
            let options = args.from(2);
            let incr = options
                .iter()
                .take_while(|a| OPTIONS.iter().any(|o| a.eq_ignore_ascii_case(o.as_bytes())))
                .any(|a| a.eq_ignore_ascii_case(b"incr"));
            [
                Some((if incr { "zincr" } else { "zadd" }, class::ZSET)),
                None,
            ]
        }
        _ => return None,
    })
}
