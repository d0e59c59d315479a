//! The static command table: the single source for dispatch (handler,
//! arity, auth exemption) and for COMMAND's introspection replies.

use std::sync::OnceLock;

use super::context::Ctx;
use super::short_name;
use super::{
    acl, bitfield, bitop, bits, client, cluster, collections, config, connection, counters,
    databases, debug, docs, dump, expiry, functions, hll, hotkeys, info, keys, latency, lcs,
    lolwut, memory, migrate, monitor, object, pipeline, plugin, pubsub, ranges, replication, save,
    scan, scripting, server, slowlog, strings, transaction,
};
use super::{args::Args, error::CmdResult};

pub type Handler = fn(&mut Ctx<'_>, Args<'_>) -> CmdResult;

/// Finds the keys of a command whose keys no (first, last, step) triple
/// describes (EVAL's numkeys, PIPELINE CALL's `KEY k`), calling `f` with
/// each.
pub type KeyFinder = for<'a> fn(Args<'a>, &mut dyn FnMut(&'a [u8]));

pub struct CommandDef {
    /// Lowercase; "parent|sub" for subcommands, as Redis 7 names them.
    pub name: &'static str,
    /// Redis arity: N exactly N arguments (name included), -N at least N.
    pub arity: i32,
    pub flags: &'static [&'static str],
    /// First key, last key (-1: the last argument), step.
    pub keys: (i32, i32, i32),
    /// Instead of `keys`, for keys found by their arguments.
    pub find_keys: Option<KeyFinder>,
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub handler: Handler,
    pub subcommands: &'static [CommandDef],
}

impl CommandDef {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }
    /// The subcommand part of "parent|sub", or the whole name.
    pub fn leaf_name(&self) -> &'static str {
        self.name.rsplit('|').next().unwrap_or(self.name)
    }
    /// The keys a command names, by its key spec (first, last, step).
    pub fn keys_of<'a>(&self, args: Args<'a>, keys: &mut Vec<&'a [u8]>) {
        self.for_each_key(args, |k| keys.push(k));
    }

    /// Calls `f` with each key the command names, in order (no allocation:
    /// cluster routing takes every keyed command's slot this way).
    #[inline]
    pub fn for_each_key<'a>(&self, args: Args<'a>, mut f: impl FnMut(&'a [u8])) {
        if let Some(find) = self.find_keys {
            return find(args, &mut f);
        }
        let (first, last, step) = self.keys;
        if first <= 0 {
            return;
        }
        let last = if last < 0 {
            args.len() as i32 + last
        } else {
            last.min(args.len() as i32 - 1)
        };
        let mut i = first;
        while i <= last {
            f(args.get(i as usize));
            i += step.max(1);
        }
    }

    /// One of Redis's "may replicate" commands that are not writes:
    /// PFCOUNT (it may rewrite its key's representation), PUBLISH and
    /// SPUBLISH (the message is propagated). A WRITE pause holds them and
    /// read-only scripts refuse them, as writes. (COMMAND INFO does not
    /// show the flag, in Redis either.)
    pub fn may_replicate(&self) -> bool {
        matches!(self.name, "pfcount" | "publish" | "spublish")
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let a = i64::from(self.arity);
        if a >= 0 {
            argc == a
        } else {
            argc >= -a
        }
    }
}

pub(super) const R: &[&str] = &["readonly"];
pub(super) const RF: &[&str] = &["readonly", "fast"];
pub(super) const W: &[&str] = &["write"];
pub(super) const WF: &[&str] = &["write", "fast"];
pub(super) const WM: &[&str] = &["write", "denyoom"];
pub(super) const WMF: &[&str] = &["write", "denyoom", "fast"];
pub(super) const F: &[&str] = &["fast"];
const LS: &[&str] = &["loading", "stale"];
const LSF: &[&str] = &["loading", "stale", "fast"];
const NOAUTH: &[&str] = &[
    "noscript",
    "loading",
    "stale",
    "fast",
    "no_auth",
    "allow_busy",
];
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];
pub(super) const NOKEYS: (i32, i32, i32) = (0, 0, 0);
pub(super) const KEY1: (i32, i32, i32) = (1, 1, 1);
pub(super) const KEYS_ALL: (i32, i32, i32) = (1, -1, 1);
pub(super) const KEYS_2: (i32, i32, i32) = (1, 2, 1);
/// A subcommand's key, argument 2 (OBJECT ENCODING key, MEMORY USAGE key).
pub(super) const SUB_KEY: (i32, i32, i32) = (2, 2, 1);

#[allow(clippy::too_many_arguments)] // a table row, read positionally
pub(super) const fn c(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    handler: Handler,
) -> CommandDef {
    CommandDef {
        name,
        arity,
        flags,
        keys,
        find_keys: None,
        group,
        since,
        summary,
        handler,
        subcommands: &[],
    }
}

impl CommandDef {
    /// This row with its keys found by `find` (see [`KeyFinder`]).
    pub(super) const fn finding_keys(self, find: KeyFinder) -> CommandDef {
        CommandDef {
            find_keys: Some(find),
            ..self
        }
    }
}

/// A subcommand (of CLIENT, CONFIG, COMMAND, PLUGIN): takes no keys.
#[allow(clippy::too_many_arguments)]
pub(crate) const fn keyless(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    handler: Handler,
) -> CommandDef {
    c(
        name,
        arity,
        flags,
        (0, 0, 0),
        group,
        since,
        summary,
        handler,
    )
}

/// A command with subcommands; `handler` runs only when it is called bare
/// (COMMAND), otherwise dispatch resolves the subcommand.
#[allow(clippy::too_many_arguments)]
pub(crate) const fn container(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    handler: Handler,
    subcommands: &'static [CommandDef],
) -> CommandDef {
    CommandDef {
        name,
        arity,
        flags,
        keys: NOKEYS,
        find_keys: None,
        group,
        since,
        summary,
        handler,
        subcommands,
    }
}

/// Bare CLIENT/CONFIG fail the arity check before they get here.
pub(crate) fn needs_subcommand(_: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    Err(super::error::CmdError::Syntax)
}

const S: &str = "string";
const G: &str = "generic";
const CN: &str = "connection";
const SV: &str = "server";
const BM: &str = "bitmap";
const HLL: &str = "hyperloglog";
const PS: &str = "pubsub";
const TX: &str = "transactions";
const CL: &str = "cluster";
/// MULTI, DISCARD, WATCH, UNWATCH.
const TXF: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];
/// (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE.
const SUB: &[&str] = &["pubsub", "noscript", "loading", "stale"];
const PUB: &[&str] = &["pubsub", "loading", "stale", "fast"];
const SCR: &str = "scripting";
/// EVAL, EVALSHA, FCALL: keys are `argv[3 .. 3 + numkeys]` (Redis's
/// keynum spec), found by `scripting::for_each_script_key`.
const SCRIPT: &[&str] = &[
    "noscript",
    "stale",
    "skip_monitor",
    "no_mandatory_keys",
    "movablekeys",
];
const SCRIPT_RO: &[&str] = &[
    "readonly",
    "noscript",
    "stale",
    "skip_monitor",
    "no_mandatory_keys",
    "movablekeys",
];

#[rustfmt::skip]
pub static COMMANDS: &[CommandDef] = &[
    c("get", 2, RF, KEY1, S, "1.0.0", "Returns the string value of a key.", strings::get),
    c("set", -3, WM, KEY1, S, "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", strings::set),
    c("setnx", 3, WMF, KEY1, S, "1.0.0", "Set the string value of a key only when the key doesn't exist.", strings::setnx),
    c("setex", 4, WM, KEY1, S, "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", strings::setex),
    c("psetex", 4, WM, KEY1, S, "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", strings::psetex),
    c("getset", 3, WMF, KEY1, S, "1.0.0", "Returns the previous string value of a key after setting it to a new value.", strings::getset),
    c("getdel", 2, WF, KEY1, S, "6.2.0", "Returns the string value of a key after deleting the key.", strings::getdel),
    c("getex", -2, WF, KEY1, S, "6.2.0", "Returns the string value of a key after setting its expiration time.", strings::getex),
    c("mget", -2, RF, KEYS_ALL, S, "1.0.0", "Atomically returns the string values of one or more keys.", strings::mget),
    c("mset", -3, WM, (1, -1, 2), S, "1.0.1", "Atomically creates or modifies the string values of one or more keys.", strings::mset),
    c("msetnx", -3, WM, (1, -1, 2), S, "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", strings::msetnx),
    c("incr", 2, WMF, KEY1, S, "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", counters::incr),
    c("decr", 2, WMF, KEY1, S, "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", counters::decr),
    c("incrby", 3, WMF, KEY1, S, "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", counters::incrby),
    c("decrby", 3, WMF, KEY1, S, "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", counters::decrby),
    c("incrbyfloat", 3, WMF, KEY1, S, "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", counters::incrbyfloat),
    c("append", 3, WMF, KEY1, S, "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", ranges::append),
    c("strlen", 2, RF, KEY1, S, "2.2.0", "Returns the length of a string value.", ranges::strlen),
    c("getrange", 4, R, KEY1, S, "2.4.0", "Returns a substring of the string stored at a key.", ranges::getrange),
    c("substr", 4, R, KEY1, S, "1.0.0", "Returns a substring from a string value.", ranges::getrange),
    c("lcs", -3, R, KEYS_2, S, "7.0.0", "Finds the longest common substring.", lcs::lcs),
    c("setrange", 4, WM, KEY1, S, "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", ranges::setrange),
    c("setbit", 4, WM, KEY1, BM, "2.2.0", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", bits::setbit),
    c("getbit", 3, RF, KEY1, BM, "2.2.0", "Returns a bit value by offset.", bits::getbit),
    c("bitcount", -2, R, KEY1, BM, "2.6.0", "Counts the number of set bits (population counting) in a string.", bits::bitcount),
    c("bitpos", -3, R, KEY1, BM, "2.8.7", "Finds the first set (1) or clear (0) bit in a string.", bits::bitpos),
    c("bitop", -4, WM, (2, -1, 1), BM, "2.6.0", "Performs bitwise operations on multiple strings, and stores the result.", bitop::bitop),
    c("bitfield", -2, WM, KEY1, BM, "3.2.0", "Performs arbitrary bitfield integer operations on strings.", bitfield::bitfield),
    c("bitfield_ro", -2, RF, KEY1, BM, "6.0.0", "Performs arbitrary read-only bitfield integer operations on strings.", bitfield::bitfield_ro),
    c("pfadd", -2, WMF, KEY1, HLL, "2.8.9", "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.", hll::pfadd),
    c("pfcount", -2, R, KEYS_ALL, HLL, "2.8.9", "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).", hll::pfcount),
    c("pfmerge", -2, WM, KEYS_ALL, HLL, "2.8.9", "Merges one or more HyperLogLog values into a single key.", hll::pfmerge),
    c("pfdebug", 3, &["write", "denyoom", "admin"], (2, 2, 1), HLL, "2.8.9", "Internal commands for debugging HyperLogLog values.", hll::pfdebug),
    c("pfselftest", 1, &["admin"], NOKEYS, HLL, "2.8.9", "An internal command for testing HyperLogLog values.", hll::pfselftest),
    c("del", -2, W, KEYS_ALL, G, "1.0.0", "Deletes one or more keys.", keys::del),
    c("unlink", -2, WF, KEYS_ALL, G, "4.0.0", "Asynchronously deletes one or more keys.", keys::del),
    c("exists", -2, RF, KEYS_ALL, G, "1.0.0", "Determines whether one or more keys exist.", keys::exists),
    c("type", 2, RF, KEY1, G, "1.0.0", "Determines the type of value stored at a key.", keys::type_),
    c("touch", -2, RF, KEYS_ALL, G, "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", keys::touch),
    c("rename", 3, W, KEYS_2, G, "1.0.0", "Renames a key and overwrites the destination.", keys::rename),
    c("renamenx", 3, WF, KEYS_2, G, "1.0.0", "Renames a key only when the target key name doesn't exist.", keys::renamenx),
    c("copy", -3, WM, KEYS_2, G, "6.2.0", "Copies the value of a key to a new key.", keys::copy),
    c("move", 3, WF, KEY1, G, "1.0.0", "Moves a key to another database.", keys::move_key),
    c("dump", 2, R, KEY1, G, "2.6.0", "Returns a serialized representation of the value stored at a key.", dump::dump),
    c("restore", -4, WM, KEY1, G, "2.6.0", "Creates a key from the serialized representation of a value.", dump::restore),
    c("restore-asking", -4, &["write", "denyoom", "asking"], KEY1, G, "3.0.0", "An internal command for migrating keys in a cluster.", dump::restore),
    c("migrate", -6, &["write", "movablekeys"], (3, 3, 1), G, "2.6.0", "Atomically transfers a key from one Redis instance to another.", migrate::migrate).finding_keys(migrate::migrate_keys),
    c("expire", -3, WF, KEY1, G, "1.0.0", "Sets the expiration time of a key in seconds.", expiry::expire),
    c("pexpire", -3, WF, KEY1, G, "2.6.0", "Sets the expiration time of a key in milliseconds.", expiry::pexpire),
    c("expireat", -3, WF, KEY1, G, "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", expiry::expireat),
    c("pexpireat", -3, WF, KEY1, G, "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", expiry::pexpireat),
    c("ttl", 2, RF, KEY1, G, "1.0.0", "Returns the expiration time in seconds of a key.", expiry::ttl),
    c("pttl", 2, RF, KEY1, G, "2.6.0", "Returns the expiration time in milliseconds of a key.", expiry::pttl),
    c("expiretime", 2, RF, KEY1, G, "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", expiry::expiretime),
    c("pexpiretime", 2, RF, KEY1, G, "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", expiry::pexpiretime),
    c("persist", 2, WF, KEY1, G, "2.2.0", "Removes the expiration time of a key.", expiry::persist),
    c("scan", -2, R, NOKEYS, G, "2.8.0", "Iterates over the key names in the database.", scan::scan),
    c("keys", 2, R, NOKEYS, G, "1.0.0", "Returns all key names that match a pattern.", scan::keys),
    c("randomkey", 1, R, NOKEYS, G, "1.0.0", "Returns a random key name from the database.", scan::randomkey),
    c("dbsize", 1, RF, NOKEYS, SV, "1.0.0", "Returns the number of keys in the database.", databases::dbsize),
    c("flushdb", -1, W, NOKEYS, SV, "1.0.0", "Remove all keys from the current database.", databases::flush),
    c("flushall", -1, W, NOKEYS, SV, "1.0.0", "Removes all keys from all databases.", databases::flush),
    c("swapdb", 3, WF, NOKEYS, SV, "4.0.0", "Swaps two Redis databases.", databases::swapdb),
    c("ping", -1, F, NOKEYS, CN, "1.0.0", "Returns the server's liveliness response.", connection::ping),
    c("echo", 2, &["loading", "stale", "fast"], NOKEYS, CN, "1.0.0", "Returns the given string.", connection::echo),
    c("quit", -1, NOAUTH, NOKEYS, CN, "1.0.0", "Closes the connection.", connection::quit),
    c("reset", 1, NOAUTH, NOKEYS, CN, "6.2.0", "Resets the connection.", connection::reset),
    c("hello", -1, NOAUTH, NOKEYS, CN, "6.0.0", "Handshakes with the Redis server.", connection::hello),
    c("auth", -2, NOAUTH, NOKEYS, CN, "1.0.0", "Authenticates the connection.", connection::auth),
    c("select", 2, LSF, NOKEYS, CN, "1.0.0", "Changes the selected database.", databases::select),
    container("client", -2, &["sentinel"], CN, "2.4.0", "A container for client connection commands.", needs_subcommand, client::SUBCOMMANDS),
    c("info", -1, LS, NOKEYS, SV, "1.0.0", "Returns information and statistics about the server.", info::info),
    c("hotkeys", -1, LS, NOKEYS, SV, "0.1.0", "Lists the most accessed keys over the hot-key window, with their rates.", hotkeys::hotkeys),
    container("acl", -2, &[], SV, "6.0.0", "A container for Access List Control commands", needs_subcommand, acl::SUBCOMMANDS),
    container("config", -2, &[], SV, "2.0.0", "A container for server configuration commands.", needs_subcommand, config::SUBCOMMANDS),
    container("command", -1, LS, SV, "2.8.13", "Returns detailed information about all commands.", docs::command, docs::SUBCOMMANDS),
    c("time", 1, LSF, NOKEYS, SV, "2.6.0", "Returns the server time.", server::time),
    c("debug", -2, &["admin", "noscript", "loading", "stale"], NOKEYS, SV, "1.0.0", "A container for debugging commands.", debug::debug),
    c("monitor", 1, ADMIN, NOKEYS, SV, "1.0.0", "Listens for all requests received by the server in real-time.", monitor::monitor),
    container("plugin", -2, &["noscript"], SV, "0.1.0", "A container for plugin commands.", needs_subcommand, plugin::SUBCOMMANDS),
    container("pipeline", -2, &["noscript"], SV, "0.1.0", "A container for pipeline commands.", needs_subcommand, pipeline::SUBCOMMANDS),
    c("subscribe", -2, SUB, NOKEYS, PS, "2.0.0", "Listens for messages published to channels.", pubsub::subscribe),
    c("unsubscribe", -1, SUB, NOKEYS, PS, "2.0.0", "Stops listening to messages posted to channels.", pubsub::unsubscribe),
    c("psubscribe", -2, SUB, NOKEYS, PS, "2.0.0", "Listens for messages published to channels that match one or more patterns.", pubsub::psubscribe),
    c("punsubscribe", -1, SUB, NOKEYS, PS, "2.0.0", "Stops listening to messages published to channels that match one or more patterns.", pubsub::punsubscribe),
    c("ssubscribe", -2, SUB, KEYS_ALL, PS, "7.0.0", "Listens for messages published to shard channels.", pubsub::ssubscribe),
    c("sunsubscribe", -1, SUB, KEYS_ALL, PS, "7.0.0", "Stops listening to messages posted to shard channels.", pubsub::sunsubscribe),
    c("multi", 1, TXF, NOKEYS, TX, "1.2.0", "Starts a transaction.", transaction::multi),
    c("exec", 1, &["noscript", "loading", "stale", "skip_slowlog"], NOKEYS, TX, "1.2.0", "Executes all commands in a transaction.", transaction::exec),
    c("discard", 1, TXF, NOKEYS, TX, "2.0.0", "Discards a transaction.", transaction::discard),
    c("watch", -2, TXF, KEYS_ALL, TX, "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", transaction::watch),
    c("unwatch", 1, TXF, NOKEYS, TX, "2.2.0", "Forgets about watched keys of a transaction.", transaction::unwatch),
    c("publish", 3, PUB, NOKEYS, PS, "2.0.0", "Posts a message to a channel.", pubsub::publish),
    c("spublish", 3, PUB, KEY1, PS, "7.0.0", "Post a message to a shard channel", pubsub::spublish),
    container("pubsub", -2, &[], PS, "2.8.0", "A container for Pub/Sub commands.", needs_subcommand, pubsub::SUBCOMMANDS),
    container("slowlog", -2, &[], SV, "2.2.12", "A container for slow log commands.", needs_subcommand, slowlog::SUBCOMMANDS),
    container("latency", -2, &[], SV, "2.8.13", "A container for latency diagnostics commands.", needs_subcommand, latency::SUBCOMMANDS),
    container("object", -2, &[], G, "2.2.3", "A container for object introspection commands.", needs_subcommand, object::SUBCOMMANDS),
    container("memory", -2, &[], SV, "4.0.0", "A container for memory diagnostics commands.", needs_subcommand, memory::SUBCOMMANDS),
    c("wait", 3, &["noscript"], NOKEYS, G, "3.0.0", "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.", replication::wait),
    c("waitaof", 4, &["noscript"], NOKEYS, G, "7.2.0", "Blocks until all of the preceding write commands sent by the connection are written to the append-only file of the master and/or replicas.", replication::waitaof),
    c("eval", -3, SCRIPT, NOKEYS, SCR, "2.6.0", "Executes a server-side Lua script.", scripting::eval).finding_keys(scripting::for_each_script_key),
    c("evalsha", -3, SCRIPT, NOKEYS, SCR, "2.6.0", "Executes a server-side Lua script by SHA1 digest.", scripting::evalsha).finding_keys(scripting::for_each_script_key),
    c("eval_ro", -3, SCRIPT_RO, NOKEYS, SCR, "7.0.0", "Executes a read-only server-side Lua script.", scripting::eval_ro).finding_keys(scripting::for_each_script_key),
    c("evalsha_ro", -3, SCRIPT_RO, NOKEYS, SCR, "7.0.0", "Executes a read-only server-side Lua script by SHA1 digest.", scripting::evalsha_ro).finding_keys(scripting::for_each_script_key),
    container("script", -2, &[], SCR, "2.6.0", "A container for Lua scripts management commands.", needs_subcommand, scripting::SUBCOMMANDS),
    c("fcall", -3, SCRIPT, NOKEYS, SCR, "7.0.0", "Invokes a function.", functions::fcall).finding_keys(scripting::for_each_script_key),
    c("fcall_ro", -3, SCRIPT_RO, NOKEYS, SCR, "7.0.0", "Invokes a read-only function.", functions::fcall_ro).finding_keys(scripting::for_each_script_key),
    container("function", -2, &[], SCR, "7.0.0", "A container for function commands.", needs_subcommand, functions::SUBCOMMANDS),
    container("cluster", -2, &[], CL, "3.0.0", "A container for Redis Cluster commands.", needs_subcommand, cluster::SUBCOMMANDS),
    c("readonly", 1, LSF, NOKEYS, CL, "3.0.0", "Enables read-only queries for a connection to a Redis Cluster replica node.", cluster::readonly),
    c("readwrite", 1, LSF, NOKEYS, CL, "3.0.0", "Enables read-write queries for a connection to a Reids Cluster replica node.", cluster::readonly),
    c("asking", 1, F, NOKEYS, CL, "3.0.0", "Signals that a cluster client is following an -ASK redirect.", cluster::asking),
    c("save", 1, &["admin", "noscript", "no_async_loading", "no_multi"], NOKEYS, SV, "1.0.0", "Synchronously saves the database(s) to disk.", save::save),
    c("bgsave", -1, &["admin", "noscript", "no_async_loading"], NOKEYS, SV, "1.0.0", "Asynchronously saves the database(s) to disk.", save::bgsave),
    c("bgrewriteaof", 1, &["admin", "noscript", "no_async_loading"], NOKEYS, SV, "1.0.0", "Asynchronously rewrites the append-only file to disk.", save::bgrewriteaof),
    c("lastsave", 1, LSF, NOKEYS, SV, "1.0.0", "Returns the Unix timestamp of the last successful save to disk.", save::lastsave),
    c("role", 1, &["noscript", "loading", "stale", "fast"], NOKEYS, SV, "2.8.12", "Returns the replication role.", replication::role),
    c("replicaof", 3, &["admin", "noscript", "stale", "no_async_loading"], NOKEYS, SV, "5.0.0", "Configures a server as replica of another, or promotes it to a master.", replication::replicaof),
    c("slaveof", 3, &["admin", "noscript", "stale", "no_async_loading"], NOKEYS, SV, "1.0.0", "Sets a Redis server as a replica of another, or promotes it to being a master.", replication::replicaof),
    c("lolwut", -1, RF, NOKEYS, SV, "5.0.0", "Displays computer art and the Redis version", lolwut::lolwut),
    c("shutdown", -1, &["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"], NOKEYS, SV, "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server.", server::shutdown),
];

/// Every top-level command: the main table, then each collection type's.
pub fn top_level() -> impl Iterator<Item = &'static CommandDef> + Clone {
    std::iter::once(COMMANDS)
        .chain(collections::TABLES.iter().copied())
        .flatten()
}

/// How many top-level commands there are (COMMAND COUNT).
pub fn top_level_count() -> usize {
    COMMANDS.len() + collections::TABLES.iter().map(|t| t.len()).sum::<usize>()
}

/// Every command and subcommand (global indexes, used for the per-client
/// "last command"), with an open-addressing table over top-level names.
struct Index {
    all: Vec<&'static CommandDef>,
    slots: Vec<u16>,
    /// Top-level names of up to 8 bytes, by their packed word (`short_name`).
    short: Vec<ShortSlot>,
}

#[derive(Clone, Copy)]
struct ShortSlot {
    packed: u64,
    len: u8,
    cmd: u16,
}

/// Open addressing: keep it well above the number of top-level commands.
const SLOTS: usize = 1024;
const EMPTY: u16 = u16::MAX;

fn hash(name: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for &b in name {
        h = (h ^ u32::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0193);
    }
    h as usize
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut all: Vec<&'static CommandDef> = top_level().collect();
        let mut slots = vec![EMPTY; SLOTS];
        for (i, def) in top_level().enumerate() {
            let mut h = hash(def.name.as_bytes()) % SLOTS;
            while slots[h] != EMPTY {
                h = (h + 1) % SLOTS;
            }
            slots[h] = i as u16;
        }
        let empty = ShortSlot {
            packed: 0,
            len: 0,
            cmd: EMPTY,
        };
        let mut short = vec![empty; SLOTS];
        for (i, def) in top_level().enumerate() {
            let name = def.name.as_bytes();
            if name.len() <= short_name::MAX {
                let packed = short_name::pack(name);
                let mut h = short_name::slot(packed, name.len(), SLOTS);
                while short[h].cmd != EMPTY {
                    h = (h + 1) % SLOTS;
                }
                short[h] = ShortSlot {
                    packed,
                    len: name.len() as u8,
                    cmd: i as u16,
                };
            }
        }
        for def in top_level() {
            all.extend(def.subcommands.iter());
        }
        Index { all, slots, short }
    })
}

/// Case-insensitive lookup of a top-level command: (global index, command).
pub fn lookup(name: &[u8]) -> Option<(usize, &'static CommandDef)> {
    let idx = index();
    if name.len() <= short_name::MAX {
        return lookup_short(idx, name);
    }
    if name.len() > 32 {
        return None;
    }
    let mut h = hash(name) % SLOTS;
    loop {
        let slot = idx.slots[h];
        if slot == EMPTY {
            return None;
        }
        let def = idx.all[slot as usize];
        if def.name.as_bytes().eq_ignore_ascii_case(name) {
            return Some((slot as usize, def));
        }
        h = (h + 1) % SLOTS;
    }
}

/// `lookup` for names of up to 8 bytes: one packed word compared per probe.
#[inline]
fn lookup_short(idx: &'static Index, name: &[u8]) -> Option<(usize, &'static CommandDef)> {
    let packed = short_name::pack(name);
    let mut h = short_name::slot(packed, name.len(), SLOTS);
    loop {
        let slot = idx.short[h];
        if slot.cmd == EMPTY {
            return None;
        }
        if slot.packed == packed && usize::from(slot.len) == name.len() {
            return Some((usize::from(slot.cmd), idx.all[usize::from(slot.cmd)]));
        }
        h = (h + 1) % SLOTS;
    }
}

/// Subcommand `sub` of `parent`: (global index, subcommand).
pub fn lookup_sub(parent: &'static CommandDef, sub: &[u8]) -> Option<(usize, &'static CommandDef)> {
    let def = parent
        .subcommands
        .iter()
        .find(|d| d.leaf_name().as_bytes().eq_ignore_ascii_case(sub))?;
    let pos = index().all.iter().position(|d| std::ptr::eq(*d, def))?;
    Some((pos, def))
}

/// The command or subcommand with a global index.
pub fn by_index(i: usize) -> Option<&'static CommandDef> {
    index().all.get(i).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every top-level name is found in any case, by either path (short or
    /// long); a name with an extra byte or a NUL padding is not.
    #[test]
    fn lookup_finds_every_command_in_any_case() {
        for (i, def) in top_level().enumerate() {
            let upper = def.name.to_ascii_uppercase();
            for name in [def.name, upper.as_str()] {
                let (found, _) = lookup(name.as_bytes()).expect(name);
                assert_eq!(found, i, "{name}");
            }
            let mut padded = def.name.as_bytes().to_vec();
            padded.push(0);
            assert!(lookup(&padded).is_none(), "{padded:?}");
        }
        assert!(lookup(b"").is_none());
        assert!(lookup(b"nosuchcm").is_none());
    }
}
