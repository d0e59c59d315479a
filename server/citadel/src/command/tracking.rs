//! CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO and the two hooks
//! of client-side caching: after a read by a tracking client its keys are
//! remembered (`remember_reads`), and every key change the cache logs
//! invalidates (`key_events::flush` calls `crate::tracking::Tracking::
//! changed`). See `crate::tracking` for the registry.

use std::sync::Weak;

use citadel_resp::Reply;

use super::args::Args;
use super::context::{ConnState, ConnTracking, Ctx};
use super::error::{CmdError, CmdResult};
use super::table::CommandDef;
use crate::clients::ClientMode;
use crate::forward::PeerTracking;
use crate::pubsub::Kind;
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::tracking::{BcastBatch, Invalidated, Options};
use citadel_settings::server as setting;

const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

fn err(text: &'static str) -> CmdError {
    CmdError::Static(text)
}

pub fn tracking(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let on = if args.is(2, "on") {
        true
    } else if args.is(2, "off") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let mut o = Options::default();
    let mut redirect_given = false;
    let mut i = 3;
    while i < args.len() {
        if args.is(i, "redirect") && i + 1 < args.len() {
            if redirect_given {
                return Err(err(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            redirect_given = true;
            let id = args.int(i + 1)? as u64;
            if id != ctx.conn.client.id && ctx.state.clients.get(id).is_none() {
                return Err(err("ERR The client ID you want redirect to does not exist"));
            }
            o.redirect = (id != ctx.conn.client.id).then_some(id);
            i += 1;
        } else if args.is(i, "bcast") {
            o.bcast = true;
        } else if args.is(i, "optin") {
            o.optin = true;
        } else if args.is(i, "optout") {
            o.optout = true;
        } else if args.is(i, "noloop") {
            o.noloop = true;
        } else if args.is(i, "prefix") && i + 1 < args.len() {
            o.prefixes.push(args.get(i + 1).into());
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let id = ctx.conn.client.id;
    if !on {
        ctx.state.tracking.disable(id);
        ctx.conn.tracking = None;
        ctx.conn.client.set_mode(ClientMode::Tracking, false);
        ctx.conn.client.set_mode(ClientMode::TrackingBcast, false);
        ctx.out.ok();
        return Ok(());
    }
    if !o.bcast && !o.prefixes.is_empty() {
        return Err(err("ERR PREFIX option requires BCAST mode to be enabled"));
    }
    if let Some(was) = ctx.conn.tracking {
        if was.bcast != o.bcast {
            return Err(err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
        }
    }
    if o.bcast && (o.optin || o.optout) {
        return Err(err("ERR OPTIN and OPTOUT are not compatible with BCAST"));
    }
    if o.optin && o.optout {
        return Err(err("ERR You can't specify both OPTIN mode and OPTOUT mode"));
    }
    if let Some(was) = ctx.conn.tracking {
        if (o.optin && was.optout) || (o.optout && was.optin) {
            return Err(err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
        }
    }
    if o.bcast {
        let had = ctx.state.tracking.options(id).map(|o| o.prefixes);
        if let Some(o) = crate::tracking::collision(&had.unwrap_or_default(), &o.prefixes) {
            let which = if o.existing {
                "an existing"
            } else {
                "another provided"
            };
            return Err(CmdError::PrefixOverlap {
                prefix: o.prefix,
                which,
                other: o.other,
            });
        }
    }
    ctx.conn.tracking = Some(ConnTracking {
        bcast: o.bcast,
        optin: o.optin,
        optout: o.optout,
        ..ConnTracking::default()
    });
    ctx.conn.client.set_mode(ClientMode::Tracking, true);
    ctx.conn.client.set_mode(ClientMode::TrackingBcast, o.bcast);
    ctx.state.tracking.enable(id, o);
    ctx.out.ok();
    Ok(())
}

pub fn caching(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let yes = if args.is(2, "yes") {
        true
    } else if args.is(2, "no") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let Some(t) = ctx.conn.tracking.as_mut().filter(|t| t.optin || t.optout) else {
        return Err(err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    };
    if yes && !t.optin {
        return Err(err(
            "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
        ));
    }
    if !yes && !t.optout {
        return Err(err(
            "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
        ));
    }
    t.caching = Some(yes);
    t.caching_fresh = true;
    ctx.out.ok();
    Ok(())
}

pub fn getredir(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let redirect = match ctx.state.tracking.options(ctx.conn.client.id) {
        None => -1,
        Some(o) => o.redirect.map_or(0, |r| r as i64),
    };
    ctx.out.int(redirect);
    Ok(())
}

pub fn trackinginfo(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let options = ctx.state.tracking.options(ctx.conn.client.id);
    let mut flags: Vec<&str> = Vec::new();
    match (&options, ctx.conn.tracking) {
        (Some(o), Some(t)) => {
            flags.push("on");
            if o.bcast {
                flags.push("bcast");
            }
            if o.optin {
                flags.push("optin");
            }
            if o.optout {
                flags.push("optout");
            }
            match t.caching {
                Some(true) => flags.push("caching-yes"),
                Some(false) => flags.push("caching-no"),
                None => {}
            }
            if o.noloop {
                flags.push("noloop");
            }
            if o.redirect.is_some_and(|r| !ctx.state.tracking.reaches(r)) {
                flags.push("broken_redirect");
            }
        }
        _ => flags.push("off"),
    }
    let out = &mut ctx.out;
    out.map(3);
    out.bulk(b"flags");
    out.set(flags.len());
    for f in &flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"redirect");
    out.int(match &options {
        None => -1,
        Some(o) => o.redirect.map_or(0, |r| r as i64),
    });
    out.bulk(b"prefixes");
    let mut prefixes = options.map(|o| o.prefixes).unwrap_or_default();
    // Redis keeps them in a radix tree: listed in byte order.
    prefixes.sort();
    out.array(prefixes.len());
    for p in &prefixes {
        out.bulk(p);
    }
    Ok(())
}

/// After a command of a tracking client: the keys a read-only command
/// named are remembered (default mode, subject to OPTIN/OPTOUT). A script
/// is not read-only itself: its declared keys are remembered if it called
/// a read-only command (Redis's rule, EVAL_RO and FCALL_RO too).
pub fn remember_reads(
    state: &ServerState,
    thread: &ThreadCtx,
    conn: &mut ConnState,
    def: &CommandDef,
    args: Args<'_>,
    failed: bool,
) {
    let Some(t) = conn.tracking.as_mut() else {
        return;
    };
    let script_read = std::mem::take(&mut t.script_read);
    if failed {
        return;
    }
    let reads = match def.name {
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => script_read,
        _ => def.has_flag("readonly"),
    };
    // CLIENT CACHING before MULTI holds for the queue EXEC runs, as in
    // Redis (`remember_queue`).
    let caching = if std::mem::take(&mut t.caching_fresh) || def.name == "multi" {
        t.caching
    } else {
        t.caching.take()
    };
    let wanted = !t.bcast
        && reads
        && (!t.optin || caching == Some(true))
        && (!t.optout || caching != Some(false));
    if !wanted {
        return;
    }
    let mut keys = Vec::new();
    def.keys_of(args, &mut keys);
    let max = state.settings.get(&setting::TRACKING_TABLE_MAX_KEYS);
    state
        .tracking
        .remember(conn.client.id, keys.iter().copied(), max, &thread.inboxes);
    if conn.pending.is_some() {
        // Parked on read-through loads: storing the loaded value will
        // invalidate these keys (the client then does not cache the reply
        // in flight), so remember them again once the reply is written.
        conn.tracking_after_load = keys.iter().map(|k| k.to_vec()).collect();
    }
}

/// EXEC ran its queue: the keys its read-only commands named are
/// remembered, as Redis remembers each command a transaction runs.
pub fn remember_queue(ctx: &mut Ctx<'_>, tx: &super::queue::TxState) {
    let Some(t) = ctx.conn.tracking else {
        return;
    };
    let refused = (t.optin && t.caching != Some(true)) || (t.optout && t.caching == Some(false));
    if t.bcast || refused {
        return;
    }
    let mut keys = Vec::new();
    for i in 0..tx.len() {
        let (_, def, args) = tx.command(i);
        if def.has_flag("readonly") {
            def.keys_of(args, &mut keys);
        }
    }
    if !keys.is_empty() {
        let max = ctx.state.settings.get(&setting::TRACKING_TABLE_MAX_KEYS);
        let (id, inboxes) = (ctx.conn.client.id, &ctx.thread.inboxes);
        let keys = keys.iter().copied();
        ctx.state.tracking.remember(id, keys, max, inboxes);
    }
}

/// The loads a tracking client's read waited for were stored and its
/// reply written: its keys are remembered again (see `remember_reads`).
pub fn remember_after_load(state: &ServerState, thread: &ThreadCtx, conn: &mut ConnState) {
    let keys = std::mem::take(&mut conn.tracking_after_load);
    if conn.tracking.is_some() {
        let max = state.settings.get(&setting::TRACKING_TABLE_MAX_KEYS);
        let keys = keys.iter().map(|k| k.as_slice());
        state
            .tracking
            .remember(conn.client.id, keys, max, &thread.inboxes);
    }
}

/// An invalidation for this connection: a RESP3 push, or a message on
/// `__redis__:invalidate` for a RESP2 connection subscribed to it.
pub fn write_invalidation(
    state: &ServerState,
    conn: &ConnState,
    what: &Invalidated,
    out: &mut Vec<u8>,
) {
    let mut reply = Reply::new(out, conn.resp3);
    if let Invalidated::RedirectBroken(target) = what {
        // Only RESP3 can carry it, as in Redis.
        if conn.resp3 {
            reply.push(2);
            reply.bulk(b"tracking-redir-broken");
            reply.int(*target as i64);
        }
        return;
    }
    if conn.resp3 {
        reply.push(2);
        reply.bulk(b"invalidate");
    } else {
        let subscribed = conn.subscriptions > 0
            && state
                .pubsub
                .names(conn.client.id, Kind::Channel)
                .iter()
                .any(|n| &n[..] == INVALIDATE_CHANNEL);
        if !subscribed {
            return;
        }
        reply.array(3);
        reply.bulk(b"message");
        reply.bulk(INVALIDATE_CHANNEL);
    }
    match what {
        Invalidated::Keys(array) => reply.buf.extend_from_slice(array),
        // RESP3 `_`, RESP2 `$-1`, as Redis writes "invalidate everything".
        Invalidated::All | Invalidated::RedirectBroken(_) => reply.null(),
    }
}

/// Proxy mode's tracking links report here (`crate::forward`): a key a
/// peer invalidated, or one read through a lost link, is invalidated for
/// this node's clients that cached it, as a local change would be.
pub struct PeerInvalidations {
    /// Weak: the forwarder lives in the state.
    state: Weak<ServerState>,
}

impl PeerInvalidations {
    pub fn new(state: Weak<ServerState>) -> PeerInvalidations {
        PeerInvalidations { state }
    }
}

impl PeerTracking for PeerInvalidations {
    fn invalidate(&self, key: &[u8]) {
        if let Some(state) = self.state.upgrade().filter(|s| s.tracking.active()) {
            // Off the cores' loops: its own batch, sent at once.
            let mut batch = BcastBatch::default();
            state
                .tracking
                .changed(key, None, &state.inboxes, &mut batch);
            state.tracking.broadcast(&mut batch, &state.inboxes);
        }
    }

    fn max_keys(&self) -> usize {
        self.state.upgrade().map_or(0, |state| {
            state.settings.get(&setting::TRACKING_TABLE_MAX_KEYS)
        })
    }

    fn generation(&self) -> u64 {
        let state = self.state.upgrade();
        let node = state.as_ref().and_then(|s| s.cluster.get());
        node.map_or(0, |node| node.state.generation())
    }
}
