//! Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH
//! and PUBSUB's introspection, with Redis 7's reply shapes. Subscriptions
//! live in the process-wide `crate::pubsub::Registry`; a PUBLISH mails the
//! message to each receiving thread, which writes it out (see `write_message`),
//! and in cluster mode sends it to the other members (`cluster_pubsub.rs`).
//! PUBSUB's introspection counts this node's subscribers only, as in Redis
//! Cluster.

use std::sync::Arc;

use citadel_resp::Reply;

use super::args::Args;
use super::context::{ConnState, Ctx};
use super::error::{CmdError, CmdResult};
use super::table::{keyless, CommandDef};
use crate::pubsub::{Kind, Message};
use crate::wait::Mail;

/// Commands a RESP2 client may run while subscribed (its connection only
/// carries messages and subscription changes then).
const SUBSCRIBE_MODE: &[&str] = &[
    "ping",
    "subscribe",
    "ssubscribe",
    "unsubscribe",
    "sunsubscribe",
    "psubscribe",
    "punsubscribe",
    "quit",
    "reset",
];

/// Redis's refusal of `name` in RESP2 subscribe mode, if it is refused.
pub fn refuse_in_subscribe_mode(conn: &ConnState, name: &str) -> Option<CmdError> {
    refusal_in_subscribe_mode(in_resp2_subscribe_mode(conn), name)
}

/// [`refuse_in_subscribe_mode`] for a connection known to be in RESP2
/// subscribe mode or not (`subscribed`; a busy script's hook knows it from
/// the client's shared record).
pub fn refusal_in_subscribe_mode(subscribed: bool, name: &str) -> Option<CmdError> {
    if !subscribed || SUBSCRIBE_MODE.contains(&name) {
        return None;
    }
    Some(CmdError::Text(format!(
        "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    )))
}

/// True when PING must answer as in RESP2 subscribe mode (`["pong", arg]`).
pub fn in_resp2_subscribe_mode(conn: &ConnState) -> bool {
    conn.subscriptions > 0 && !conn.resp3
}

/// The confirmation verb of a (un)subscription of `kind`.
fn verb(kind: Kind, subscribe: bool) -> &'static [u8] {
    match (kind, subscribe) {
        (Kind::Channel, true) => b"subscribe",
        (Kind::Channel, false) => b"unsubscribe",
        (Kind::Pattern, true) => b"psubscribe",
        (Kind::Pattern, false) => b"punsubscribe",
        (Kind::Shard, true) => b"ssubscribe",
        (Kind::Shard, false) => b"sunsubscribe",
    }
}

/// One confirmation: verb, name (null for a bare UNSUBSCRIBE with nothing
/// to drop), and the count Redis reports for `kind` (shard channels are
/// counted apart from channels and patterns). Updates the connection's
/// total, which decides RESP2 subscribe mode.
fn confirm(ctx: &mut Ctx<'_>, kind: Kind, subscribe: bool, name: Option<&[u8]>) {
    let counts = ctx.state.pubsub.counts(ctx.conn.client.id);
    set_subscriptions(ctx.conn, counts.iter().sum());
    let count = match kind {
        Kind::Shard => counts[2],
        _ => counts[0] + counts[1],
    };
    let out = &mut ctx.out;
    out.push(3);
    out.bulk(verb(kind, subscribe));
    match name {
        Some(name) => out.bulk(name),
        None => out.null(),
    }
    out.int(count as i64);
}

fn subscribe_to(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) -> CmdResult {
    let (client, thread) = (ctx.conn.client.id, ctx.thread.index);
    for name in args.from(1).iter() {
        ctx.state.pubsub.subscribe(client, thread, kind, name);
        confirm(ctx, kind, true, Some(name));
    }
    Ok(())
}

fn unsubscribe_from(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) -> CmdResult {
    let client = ctx.conn.client.id;
    let names: Vec<Arc<[u8]>> = if args.len() > 1 {
        args.from(1).iter().map(Arc::from).collect()
    } else {
        ctx.state.pubsub.names(client, kind)
    };
    if names.is_empty() {
        confirm(ctx, kind, false, None);
    }
    for name in &names {
        ctx.state.pubsub.unsubscribe(client, kind, name);
        confirm(ctx, kind, false, Some(name));
    }
    Ok(())
}

pub fn subscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    subscribe_to(ctx, args, Kind::Channel)
}
pub fn psubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    subscribe_to(ctx, args, Kind::Pattern)
}
pub fn ssubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    subscribe_to(ctx, args, Kind::Shard)
}
pub fn unsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    unsubscribe_from(ctx, args, Kind::Channel)
}
pub fn punsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    unsubscribe_from(ctx, args, Kind::Pattern)
}
pub fn sunsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    unsubscribe_from(ctx, args, Kind::Shard)
}

/// Drops every subscription of the connection, silently (RESET).
pub fn forget_all(ctx: &mut Ctx<'_>) {
    ctx.state.pubsub.remove_client(ctx.conn.client.id);
    set_subscriptions(ctx.conn, 0);
}

/// The registry forgets a client (and its waiter) with its last
/// subscription: a later one hands the waiter over again.
fn set_subscriptions(conn: &mut ConnState, total: usize) {
    conn.subscriptions = total;
    conn.client.set_subscribed(total > 0);
    if total == 0 {
        conn.pubsub_attached = false;
    }
}

/// Delivers a message to this node's subscribers: mails it to every
/// thread with receivers; answers their number.
pub fn deliver_here(ctx: &mut Ctx<'_>, shard: bool, channel: &[u8], payload: &[u8]) -> usize {
    let (count, by_thread) = ctx.state.pubsub.receivers(shard, channel);
    if by_thread.is_empty() {
        return count;
    }
    let message = Arc::new(Message {
        shard,
        channel: channel.into(),
        payload: payload.into(),
    });
    // Inside a transaction attempt (a script; an EXEC's keyless
    // commands run after it) the messages are held until the attempt
    // commits, so an attempt retried after a conflict publishes once.
    let held = ctx.thread.cache.in_txn();
    let me = ctx.conn.client.id;
    for (thread, receivers) in by_thread {
        // A (RESP3) subscriber publishing to itself gets the message
        // before the reply, as Redis writes it (from a script, after:
        // the script's own reply buffer is no place for a push).
        let (own, others): (Vec<_>, Vec<_>) =
            receivers.into_iter().partition(|d| d.client == me && !held);
        for d in &own {
            write_message(&mut ctx.out, &message, d.pattern.as_deref());
        }
        if !others.is_empty() {
            let mail = Mail::Publish {
                message: message.clone(),
                receivers: others,
            };
            if held {
                ctx.thread.held_mail.push((thread, mail));
            } else {
                ctx.thread.inboxes.send(thread, mail);
            }
        }
    }
    count
}

/// PUBLISH: delivered here and, in cluster mode, broadcast to every other
/// member (`cluster_pubsub.rs`); the reply counts this node's receivers,
/// as Redis Cluster's does.
pub fn publish(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (channel, payload) = (args.get(1), args.get(2));
    let count = deliver_here(ctx, false, channel, payload);
    super::cluster_pubsub::broadcast(ctx, channel, payload);
    ctx.out.int(count as i64);
    Ok(())
}

/// CLUSTER PUBLISH channel message: another member's broadcast PUBLISH
/// (`cluster_pubsub.rs`), delivered to this node's subscribers only and
/// never sent on (no loops); answers their number. For peers only (their
/// connections said CLUSTER NOPROXY): a client's typo is refused rather
/// than publishing on one node.
pub fn cluster_publish(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ctx.peers_only(
        "ERR CLUSTER PUBLISH is for peer nodes (their connections say CLUSTER NOPROXY first): use PUBLISH",
    )?;
    let count = deliver_here(ctx, false, args.get(2), args.get(3));
    ctx.out.int(count as i64);
    Ok(())
}

/// SPUBLISH: the channel's slot lives here (dispatch redirected it
/// otherwise), so its subscribers are all here: never broadcast.
pub fn spublish(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let count = deliver_here(ctx, true, args.get(1), args.get(2));
    ctx.out.int(count as i64);
    Ok(())
}

/// A delivered message: message / pmessage / smessage, as a push.
pub fn write_message(out: &mut Reply<'_>, message: &Message, pattern: Option<&[u8]>) {
    match (pattern, message.shard) {
        (Some(pattern), _) => {
            out.push(4);
            out.bulk(b"pmessage");
            out.bulk(pattern);
        }
        (None, true) => {
            out.push(3);
            out.bulk(b"smessage");
        }
        (None, false) => {
            out.push(3);
            out.bulk(b"message");
        }
    }
    out.bulk(&message.channel);
    out.bulk(&message.payload);
}

fn active(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) -> CmdResult {
    // Like Redis, arguments past the pattern are ignored.
    let pattern = (args.len() > 2).then(|| args.get(2));
    let names = ctx.state.pubsub.active(kind, pattern);
    ctx.out.array(names.len());
    for name in &names {
        ctx.out.bulk(name);
    }
    Ok(())
}

fn numsub(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) -> CmdResult {
    let names = args.from(2);
    ctx.out.array(2 * names.len());
    for name in names.iter() {
        let n = ctx.state.pubsub.subscriber_count(kind, name);
        ctx.out.bulk(name);
        ctx.out.int(n as i64);
    }
    Ok(())
}

fn channels(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    active(ctx, args, Kind::Channel)
}
fn shardchannels(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    active(ctx, args, Kind::Shard)
}
fn channel_numsub(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    numsub(ctx, args, Kind::Channel)
}
fn shard_numsub(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    numsub(ctx, args, Kind::Shard)
}
fn numpat(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let n = ctx.state.pubsub.pattern_count();
    ctx.out.int(n as i64);
    Ok(())
}

const PS: &str = "pubsub";
const INTRO: &[&str] = &["pubsub", "loading", "stale"];

#[rustfmt::skip]
pub static SUBCOMMANDS: &[CommandDef] = &[
    keyless("pubsub|channels", -2, INTRO, PS, "2.8.0", "Returns the active channels.", channels),
    keyless("pubsub|numsub", -2, INTRO, PS, "2.8.0", "Returns a count of subscribers to channels.", channel_numsub),
    keyless("pubsub|numpat", 2, INTRO, PS, "2.8.0", "Returns a count of unique pattern subscriptions.", numpat),
    keyless("pubsub|shardchannels", -2, INTRO, PS, "7.0.0", "Returns the active shard channels.", shardchannels),
    keyless("pubsub|shardnumsub", -2, INTRO, PS, "7.0.0", "Returns the count of subscribers of shard channels.", shard_numsub),
    keyless("pubsub|help", 2, &["loading", "stale"], PS, "6.2.0", "Returns helpful text about the different subcommands.", help),
];

fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    super::context::reply_lines(
        &mut ctx.out,
        &[
            "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
            "HELP",
            "    Prints this help.",
        ],
    );
    Ok(())
}
