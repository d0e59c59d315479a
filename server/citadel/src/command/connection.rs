//! Connection commands: PING ECHO QUIT RESET HELLO AUTH SELECT.

use super::args::Args;
use super::client::set_name;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use crate::acl::log::{Context, Reason};
use crate::clients::ClientMode;

/// The Redis version Citadel claims, the one constant HELLO, INFO
/// (`redis_version`) and Lua's `redis.REDIS_VERSION` report. Client
/// libraries key feature checks on it: 7.4 claims Redis 7.4's replies and
/// client-facing features for the commands Citadel implements (RESP3,
/// transactions, scripts and functions, Pub/Sub with shard channels,
/// keyspace notifications, CLIENT TRACKING, which redis-py's client-side
/// cache requires of a 7.4+ server); COMMAND lists which commands those
/// are (no lists, hashes, sets or sorted sets yet).
pub const REDIS_VERSION: &str = "7.4.0";

pub fn ping(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() <= 2 && super::pubsub::in_resp2_subscribe_mode(ctx.conn) {
        // A subscriber's connection carries pushes: PING answers as one.
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out
            .bulk(if args.len() == 2 { args.get(1) } else { b"" });
        return Ok(());
    }
    match args.len() {
        1 => ctx.out.simple(b"PONG"),
        2 => ctx.out.bulk(args.get(1)),
        _ => return Err(CmdError::Arity("ping")),
    }
    Ok(())
}

pub fn echo(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ctx.out.bulk(args.get(1));
    Ok(())
}

pub fn quit(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ctx.out.ok();
    ctx.conn.close = true;
    // Gone for tracking now, not once the connection is torn down after
    // its reply: a client redirecting here hears `tracking-redir-broken`
    // for a change made right after the OK, as in Redis.
    if ctx.conn.tracking_attached || ctx.conn.tracking.is_some() {
        ctx.state.tracking.forget(ctx.conn.client.id);
    }
    Ok(())
}

pub fn reset(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    super::pubsub::forget_all(ctx);
    super::monitor::stop(ctx);
    ctx.conn.tx.discard();
    ctx.conn.tx.unwatch();
    ctx.state.tracking.disable(ctx.conn.client.id);
    ctx.conn.tracking = None;
    ctx.conn.no_touch = false;
    for mode in [
        ClientMode::Multi,
        ClientMode::Tracking,
        ClientMode::TrackingBcast,
        ClientMode::NoEvict,
        ClientMode::NoTouch,
    ] {
        ctx.conn.client.set_mode(mode, false);
    }
    ctx.conn.set_resp3(false);
    ctx.out.resp3 = false;
    ctx.conn.authed = !ctx.state.auth_required();
    let seat = super::acl_check::default_seat(ctx.state);
    super::acl_check::seat_user(ctx.conn, seat);
    ctx.conn.client.names().name.clear();
    super::databases::use_db(ctx, 0);
    ctx.out.simple(b"RESET");
    Ok(())
}

/// Checks a username/password pair against the ACL users; the client
/// becomes that user. A failure is logged (ACL LOG, reason `auth`).
fn authenticate(ctx: &mut Ctx<'_>, command: &[u8], user: &[u8], pass: &[u8]) -> CmdResult {
    match ctx.state.acl.seat(user) {
        Some(seat) if seat.user.accepts(pass) => {
            ctx.conn.authed = true;
            super::acl_check::seat_user(ctx.conn, seat);
            Ok(())
        }
        _ => {
            let (reason, context) = (Reason::Auth, Context::Toplevel);
            let object = command.to_vec();
            super::acl_check::log_entry(
                ctx.state,
                ctx.conn,
                reason,
                context,
                object,
                user.to_vec(),
            );
            Err(CmdError::WrongPass)
        }
    }
}

pub fn auth(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    match args.len() {
        2 if default_has_no_password(ctx) => return Err(CmdError::NoPasswordSet),
        2 => authenticate(ctx, args.get(0), b"default", args.get(1))?,
        3 => authenticate(ctx, args.get(0), args.get(1), args.get(2))?,
        _ => return Err(CmdError::Syntax),
    }
    ctx.out.ok();
    Ok(())
}

/// AUTH <password> needs `default` to have one (Redis: not `nopass`).
fn default_has_no_password(ctx: &Ctx<'_>) -> bool {
    ctx.state.acl.get(b"default").is_none_or(|u| u.nopass)
}

pub fn hello(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut next = 1;
    let mut version = None;
    if args.len() >= 2 {
        let v = args.int(1).map_err(|_| {
            CmdError::Static("ERR Protocol version is not an integer or out of range")
        })?;
        if !(2..=3).contains(&v) {
            return Err(CmdError::Static("NOPROTO unsupported protocol version"));
        }
        version = Some(v);
        next = 2;
    }
    let (mut credentials, mut name) = (None, None);
    while next < args.len() {
        let more = args.len() - 1 - next;
        if args.is(next, "auth") && more >= 2 {
            credentials = Some((args.get(next + 1), args.get(next + 2)));
            next += 3;
        } else if args.is(next, "setname") && more >= 1 {
            name = Some(args.get(next + 1));
            next += 2;
        } else {
            return Err(CmdError::quoting(
                "ERR Syntax error in HELLO option '",
                args.get(next),
                "'",
            ));
        }
    }
    if let Some((user, pass)) = credentials {
        authenticate(ctx, args.get(0), user, pass)?;
    }
    if !ctx.conn.authed && ctx.state.auth_required() {
        return Err(CmdError::Static(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(name) = name {
        set_name(ctx, name)?;
    }
    if let Some(v) = version {
        ctx.conn.set_resp3(v == 3);
        ctx.out.resp3 = v == 3;
    }
    let out = &mut ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if ctx.conn.resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(ctx.conn.client.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}
