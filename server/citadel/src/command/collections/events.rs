//! Keyspace events of the collection commands (Redis's names and
//! classes). A write that empties a collection publishes its event, then
//! `del` (`key_events` adds that).

use citadel_settings::key_events as class;

/// (command, event, class) for the commands whose event their name alone
/// decides (LMOVE, RPOPLPUSH and LMPOP depend on their arguments, SMOVE writes two
/// keys with different events: not yet).
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
    // SMOVE writes two keys with different events: `set` for now.
    ("sadd", "sadd", class::SET),
    ("srem", "srem", class::SET),
    ("spop", "spop", class::SET),
    ("sinterstore", "sinterstore", class::SET),
    ("sunionstore", "sunionstore", class::SET),
    ("sdiffstore", "sdiffstore", class::SET),
    // ZADD ... INCR publishes `zincr` in Redis: the name alone says `zadd`.
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
];

/// The event and class of a change collection command `name` made.
pub fn event(name: &str) -> Option<(&'static str, u32)> {
    EVENTS
        .iter()
        .find(|(command, _, _)| *command == name)
        .map(|&(_, event, class)| (event, class))
}
