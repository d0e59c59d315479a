//! Keyspace notifications: the cache handle logs every key it changes
//! (`CacheHandle::drain_changes`, tagged with the command that ran), and
//! this turns each change into Redis's event for that command and
//! publishes it on `__keyspace@<db>__:<key>` / `__keyevent@<db>__:<event>` as
//! `notify-keyspace-events` asks. Changes the cache makes on its own
//! (expiry found by a read or the sweep, eviction) are `expired` and
//! `evicted`. Only a write that happened is reported (a SETNX that found
//! the key, a DEL of a missing key publish nothing), as in Redis.

use citadel_cache::KeyChange;
use citadel_settings::key_events as class;

use std::sync::Arc;

use super::args::Args;
use super::collections::events::{
    argument_events, depends_on_arguments, event as collection_event,
};
use super::table;
use crate::pubsub::Message;
use crate::state::ServerState;
use crate::thread::{KeptArgs, ThreadCtx};
use crate::wait::{Inboxes, Mail};

/// The tag of changes no command made (the sweep on a timer).
pub const NO_COMMAND: u16 = u16::MAX;
/// Tags from here (up to `NO_COMMAND`) name a command run inside EXEC or
/// a script whose events depend on its arguments: `event_args[tag -
/// ARGS_TAGS]` (a transaction's changes are logged at its commit, after
/// the arguments are gone). Below, a tag is the command's index.
const ARGS_TAGS: u16 = 0x8000;
const MAX_KEPT: usize = 0x4000;

/// A copy of `args` of command `idx` (see `ARGS_TAGS`).
fn keep(idx: usize, args: Args<'_>) -> KeptArgs {
    let mut kept = KeptArgs {
        idx,
        buf: Vec::new(),
        spans: Vec::with_capacity(args.len()),
    };
    for arg in args.iter() {
        let start = kept.buf.len();
        kept.buf.extend_from_slice(arg);
        kept.spans.push(start..kept.buf.len());
    }
    kept
}

/// Tags the changes the cache logs from now on as command `idx`'s, run
/// with `args`. Inside a transaction or script, a command whose events
/// depend on its arguments (LMOVE, SMOVE, LMPOP, ZADD ... INCR ...) gets
/// a tag naming a copy of them, while keyspace events are on. Every
/// command passes here: outside a transaction it is one store, inlined
/// into the caller.
#[inline(always)]
pub fn tag_changes(
    state: &ServerState,
    thread: &mut ThreadCtx,
    idx: usize,
    name: &str,
    args: Args<'_>,
) {
    if !thread.cache.in_txn() {
        thread.cache.set_change_tag(idx as u16);
        return;
    }
    tag_in_txn(state, thread, idx, name, args);
}

#[inline(never)]
fn tag_in_txn(state: &ServerState, thread: &mut ThreadCtx, idx: usize, name: &str, args: Args<'_>) {
    let mut tag = idx as u16;
    let kept = &mut thread.event_args;
    if thread.cache.in_txn()
        && state.notify_flags() != 0
        && depends_on_arguments(name)
        && kept.len() < MAX_KEPT
    {
        tag = ARGS_TAGS + kept.len() as u16;
        kept.push(keep(idx, args));
    }
    thread.cache.set_change_tag(tag);
}

/// Redis's event name and class for `change` made by command `name`.
fn event(name: &str, change: KeyChange) -> Option<(&'static str, u32)> {
    use KeyChange::*;
    let generic = |e| Some((e, class::GENERIC));
    let string = |e| Some((e, class::STRING));
    match (name, change) {
        (_, Expired) => Some(("expired", class::EXPIRED)),
        (_, Evicted) => Some(("evicted", class::EVICTED)),
        ("rename" | "renamenx", Deleted) => generic("rename_from"),
        ("rename" | "renamenx", Written { .. }) => generic("rename_to"),
        ("copy", Written { .. }) => generic("copy_to"),
        ("move", Deleted) => generic("move_from"),
        ("move", Written { .. }) => generic("move_to"),
        ("restore", Written { .. }) => generic("restore"),
        ("expire" | "pexpire" | "expireat" | "pexpireat", Written { .. }) => generic("expire"),
        ("persist", Written { .. }) => generic("persist"),
        ("getex", Written { ttl: true, .. }) => generic("expire"),
        ("getex", Written { ttl: false, .. }) => generic("persist"),
        ("incr" | "decr" | "incrby" | "decrby", Written { .. }) => string("incrby"),
        ("incrbyfloat", Written { .. }) => string("incrbyfloat"),
        ("append", Written { .. }) => string("append"),
        ("setrange", Written { .. }) => string("setrange"),
        ("setbit" | "bitfield", Written { .. }) => string("setbit"),
        ("pfadd" | "pfmerge", Written { .. }) => string("pfadd"),
        // A STORE whose result is empty deletes its destination: `del` only.
        (
            "sinterstore" | "sunionstore" | "sdiffstore" | "zunionstore" | "zinterstore"
            | "zdiffstore" | "zrangestore",
            Deleted,
        ) => generic("del"),
        // A group's reads, acknowledgements and claims publish nothing
        // but the `xgroup-createconsumer` of a consumer they made (`flush`
        // finds it in `consumers_made`: `stream::consumer_made`).
        ("xreadgroup" | "xack" | "xclaim" | "xautoclaim", Written { .. }) => None,
        (_, _) if collection_event(name).is_some() => collection_event(name),
        (_, Written { .. }) => string("set"),
        (_, Deleted) => generic("del"),
    }
}

/// SET with EX/PX, SETEX, PSETEX also report `expire` after `set`.
fn also_expire(name: &str, change: KeyChange) -> bool {
    matches!(change, KeyChange::Written { ttl: true, .. })
        && matches!(name, "set" | "setex" | "psetex")
}

/// Whether `change` made by command `name` publishes Redis's `new` event
/// (class `n`, which `A` leaves out): a write where no live key was, or
/// the destination of a command that deletes it before adding it again
/// (RENAME, COPY ... REPLACE, RESTORE ... REPLACE, MOVE), which Redis
/// announces as new even when it held a value.
fn creates(name: &str, change: KeyChange) -> bool {
    match change {
        KeyChange::Written { created, .. } => {
            created || matches!(name, "rename" | "renamenx" | "copy" | "restore" | "move")
        }
        _ => false,
    }
}

/// Publishes the events of every change this thread's cache handle logged
/// and invalidates the changed keys for the clients that cached them
/// (`origin`: the client whose command made the changes, for NOLOOP).
/// `command`: the command that just ran (its index and arguments), whose
/// own changes may have argument-dependent events (`argument_events`).
pub fn flush(
    state: &ServerState,
    thread: &mut ThreadCtx,
    origin: Option<u64>,
    command: Option<(usize, Args<'_>)>,
) {
    let wanted = state.key_changes_wanted();
    thread.cache.record_changes(wanted);
    if !thread.cache.has_changes() {
        thread.event_args.clear();
        thread.consumers_made.clear();
        return;
    }
    let flags = state.notify_flags();
    let tracking = state.tracking.active();
    let ThreadCtx {
        cache,
        inboxes,
        event_args,
        consumers_made,
        bcast,
        ..
    } = thread;
    let mut channel = Vec::new();
    // Events published after the command's other keys' (a move's source).
    let mut deferred: Vec<(usize, Vec<u8>, Published)> = Vec::new();
    let mut deferred_tag = None;
    let lost = cache.drain_changes_by_namespace(|ns, key, change, tag| {
        // A move's deferred source events come right after that command's
        // other keys', before the next command's (EXEC, scripts).
        if deferred_tag.is_some_and(|t| t != tag) {
            for (db, key, published) in deferred.drain(..) {
                publish_events(state, inboxes, flags, &mut channel, (db, &key), published);
            }
        }
        let db = super::databases::db_of_namespace(&state.cache, ns);
        // The command and, where its events depend on them, its
        // arguments: the one that just ran, or one EXEC or a script ran
        // whose arguments were kept.
        let kept = (ARGS_TAGS..NO_COMMAND)
            .contains(&tag)
            .then(|| event_args.get(usize::from(tag - ARGS_TAGS)))
            .flatten();
        let (idx, args) = match kept {
            Some(kept) => (kept.idx, Some(Args::new(&kept.buf, &kept.spans))),
            None => {
                let args = command.filter(|&(idx, _)| idx == usize::from(tag));
                (usize::from(tag), args.map(|(_, args)| args))
            }
        };
        let name = table::by_index(idx).map_or("", |def| def.name);
        // A flush announces itself once (tracking's "everything" message,
        // `databases::flush`), not key by key, as in Redis: no events.
        if matches!(name, "flushall" | "flushdb") {
            return;
        }
        if tracking {
            state.tracking.changed(key, origin, inboxes, bcast);
        }
        let by_args = args
            .filter(|_| matches!(change, KeyChange::Written { .. } | KeyChange::Deleted))
            .and_then(|args| argument_events(name, args, key));
        let (mut events, defer) = by_args.unwrap_or(([event(name, change), None], false));
        // One write per consumer made (two reads of one key in a
        // transaction share a tag: only the first made the consumer).
        let made = matches!(change, KeyChange::Written { .. })
            .then(|| {
                consumers_made
                    .iter()
                    .position(|(t, n, k)| (*t, *n) == (tag, ns) && k == key)
            })
            .flatten();
        if let Some(at) = made {
            consumers_made.swap_remove(at);
            events[0] = Some(("xgroup-createconsumer", class::STREAM));
        }
        let Some((first, _)) = events[0].or(events[1]) else {
            return;
        };
        // Redis announces a key as new when it adds it, before the
        // command's own event.
        let new = creates(name, change).then_some(("new", class::NEW_KEY));
        let mut published: Published = [new, events[0], events[1], None, None];
        if also_expire(name, change) {
            published[3] = Some(("expire", class::GENERIC));
        }
        let collection = collection_event(name).is_some() || by_args.is_some();
        if change == KeyChange::Deleted && collection && first != "del" {
            // The command emptied the collection, which went with it.
            published[4] = Some(("del", class::GENERIC));
        }
        // RENAME and MOVE log their source (deleted) before their
        // destination, but Redis adds the destination (`new`) before it
        // deletes the source.
        let rename = matches!(name, "rename" | "renamenx" | "move");
        if defer || (rename && change == KeyChange::Deleted) {
            deferred_tag = Some(tag);
            deferred.push((db, key.to_vec(), published));
            return;
        }
        if rename && deferred_tag == Some(tag) {
            let new = [published[0].take(), None, None, None, None];
            publish_events(state, inboxes, flags, &mut channel, (db, key), new);
            for (db, key, published) in deferred.drain(..) {
                publish_events(state, inboxes, flags, &mut channel, (db, &key), published);
            }
        }
        publish_events(state, inboxes, flags, &mut channel, (db, key), published);
    });
    event_args.clear();
    consumers_made.clear();
    for (db, key, published) in deferred {
        publish_events(state, inboxes, flags, &mut channel, (db, &key), published);
    }
    if lost && tracking {
        // Changes were lost: whatever anyone cached may be stale.
        state.tracking.flushed(inboxes);
    }
}

/// The events one key change publishes, in order.
type Published = [Option<(&'static str, u32)>; 5];

/// Publishes `events` of `key` of database `db` on the keyspace and
/// keyevent channels, as `notify-keyspace-events` (`flags`) asks.
fn publish_events(
    state: &ServerState,
    inboxes: &Inboxes,
    flags: u32,
    channel: &mut Vec<u8>,
    (db, key): (usize, &[u8]),
    events: Published,
) {
    use std::io::Write;
    for (ev, ev_class) in events.into_iter().flatten() {
        if flags & ev_class == 0 {
            continue;
        }
        if flags & class::KEYSPACE != 0 {
            channel.clear();
            let _ = write!(channel, "__keyspace@{db}__:");
            channel.extend_from_slice(key);
            publish_from_server(state, inboxes, channel, ev.as_bytes());
        }
        if flags & class::KEYEVENT != 0 {
            channel.clear();
            let _ = write!(channel, "__keyevent@{db}__:");
            channel.extend_from_slice(ev.as_bytes());
            publish_from_server(state, inboxes, channel, key);
        }
    }
}

/// Publishes a message the server itself makes: each receiving thread gets
/// it as mail (this one too), as PUBLISH sends it to other threads.
fn publish_from_server(state: &ServerState, inboxes: &Inboxes, channel: &[u8], payload: &[u8]) {
    let (_, by_thread) = state.pubsub.receivers(false, channel);
    if by_thread.is_empty() {
        return;
    }
    let message = Arc::new(Message {
        shard: false,
        channel: channel.into(),
        payload: payload.into(),
    });
    for (thread, receivers) in by_thread {
        let mail = Mail::Publish {
            message: message.clone(),
            receivers,
        };
        inboxes.send(thread, mail);
    }
}
