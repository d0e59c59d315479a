//! Connection commands: PING ECHO QUIT RESET HELLO AUTH SELECT.

use super::args::Args;
use super::client::set_name;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use crate::acl::log::{Context, Reason};
use crate::acl::Seat;
use crate::clients::ClientMode;
use crate::state::ServerState;
use citadel_resp::write::Reply;

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

/// The user `user` when `pass` opens it.
pub fn check_credentials(state: &ServerState, user: &[u8], pass: &[u8]) -> Option<Seat> {
    state.acl.seat(user).filter(|seat| seat.user.accepts(pass))
}

/// Checks a username/password pair against the ACL users; the client
/// becomes that user. A failure is logged (ACL LOG, reason `auth`).
fn authenticate(ctx: &mut Ctx<'_>, command: &[u8], user: &[u8], pass: &[u8]) -> CmdResult {
    match check_credentials(ctx.state, user, pass) {
        Some(seat) => {
            ctx.conn.authed = true;
            super::acl_check::seat_user(ctx.conn, seat);
            Ok(())
        }
        None => {
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

/// The user and password an AUTH names.
pub fn auth_credentials<'a>(
    state: &ServerState,
    args: Args<'a>,
) -> Result<(&'a [u8], &'a [u8]), CmdError> {
    match args.len() {
        2 if default_has_no_password(state) => Err(CmdError::NoPasswordSet),
        2 => Ok((b"default", args.get(1))),
        3 => Ok((args.get(1), args.get(2))),
        _ => Err(CmdError::Syntax),
    }
}

pub fn auth(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (user, pass) = auth_credentials(ctx.state, args)?;
    authenticate(ctx, args.get(0), user, pass)?;
    ctx.out.ok();
    Ok(())
}

/// AUTH <password> needs `default` to have one (Redis: not `nopass`).
fn default_has_no_password(state: &ServerState) -> bool {
    state.acl.get(b"default").is_none_or(|u| u.nopass)
}

/// HELLO's options.
pub struct Hello<'a> {
    /// The protocol asked for: Some(true) for RESP3.
    pub resp3: Option<bool>,
    pub credentials: Option<(&'a [u8], &'a [u8])>,
    pub name: Option<&'a [u8]>,
}

/// HELLO without credentials from a client not yet authenticated.
pub const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";

impl<'a> Hello<'a> {
    pub fn parse(args: Args<'a>) -> Result<Hello<'a>, CmdError> {
        let mut next = 1;
        let mut resp3 = None;
        if args.len() >= 2 {
            let v = args.int(1).map_err(|_| {
                CmdError::Static("ERR Protocol version is not an integer or out of range")
            })?;
            if !(2..=3).contains(&v) {
                return Err(CmdError::Static("NOPROTO unsupported protocol version"));
            }
            resp3 = Some(v == 3);
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
        Ok(Hello {
            resp3,
            credentials,
            name,
        })
    }
}

/// HELLO's reply: the server's and the connection's facts.
pub fn write_hello(out: &mut Reply<'_>, resp3: bool, id: u64) {
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
}

pub fn hello(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let hello = Hello::parse(args)?;
    if let Some((user, pass)) = hello.credentials {
        authenticate(ctx, args.get(0), user, pass)?;
    }
    if !ctx.conn.authed && ctx.state.auth_required() {
        return Err(CmdError::Static(HELLO_NOAUTH));
    }
    if let Some(name) = hello.name {
        set_name(ctx, name)?;
    }
    if let Some(resp3) = hello.resp3 {
        ctx.conn.set_resp3(resp3);
        ctx.out.resp3 = resp3;
    }
    write_hello(&mut ctx.out, ctx.conn.resp3, ctx.conn.client.id);
    Ok(())
}
