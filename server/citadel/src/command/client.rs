//! CLIENT subcommands: ID SETNAME GETNAME INFO LIST KILL SETINFO NO-EVICT
//! NO-TOUCH TRACKING GETREDIR REPLY PAUSE UNPAUSE UNBLOCK HELP.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::args::Args;
use super::context::{reply_lines, Ctx, ReplyMode};
use super::error::{CmdError, CmdResult};
use super::table::{by_index, keyless, CommandDef, Handler};
use crate::clients::{ClientMode, ClientShared};

const CN: &str = "connection";
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];

const fn sub(
    name: &'static str,
    arity: i32,
    summary: &'static str,
    handler: Handler,
) -> CommandDef {
    keyless(
        name,
        arity,
        &["noscript", "loading", "stale"],
        CN,
        "2.4.0",
        summary,
        handler,
    )
}

#[rustfmt::skip]
pub static SUBCOMMANDS: &[CommandDef] = &[
    sub("client|id", 2, "Returns the unique client ID of the connection.", id),
    sub("client|setname", 3, "Sets the connection name.", setname),
    sub("client|getname", 2, "Returns the name of the connection.", getname),
    sub("client|info", 2, "Returns information about the connection.", info),
    keyless("client|list", -2, ADMIN, CN, "2.4.0", "Lists open connections.", list),
    keyless("client|kill", -3, ADMIN, CN, "2.4.0", "Terminates open connections.", kill),
    keyless("client|unblock", -3, ADMIN, CN, "5.0.0", "Unblocks a client blocked by a blocking command from a different connection.", super::blocking::client_unblock),
    sub("client|setinfo", 4, "Sets information specific to the client or connection.", setinfo),
    keyless("client|no-evict", 3, ADMIN, CN, "2.4.0", "Sets the client eviction mode of the connection.", no_evict),
    sub("client|no-touch", 3, "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.", no_touch),
    sub("client|tracking", -3, "Controls server-assisted client-side caching for the connection.", super::tracking::tracking),
    sub("client|caching", 3, "Instructs the server whether to track the keys in the next request.", super::tracking::caching),
    sub("client|getredir", 2, "Returns the client ID to which the connection's tracking notifications are redirected.", super::tracking::getredir),
    sub("client|trackinginfo", 2, "Returns information about server-assisted client-side caching for the connection.", super::tracking::trackinginfo),
    sub("client|reply", 3, "Instructs the server whether to reply to commands.", reply),
    keyless("client|pause", -3, ADMIN, CN, "3.0.0", "Suspends commands processing.", super::pause_gate::pause),
    keyless("client|unpause", 2, ADMIN, CN, "6.2.0", "Resumes processing commands from paused clients.", super::pause_gate::unpause),
    sub("client|help", 2, "Returns helpful text about the different subcommands.", help),
];

/// Client names and library attributes: printable ASCII without spaces.
fn valid_attr(v: &[u8]) -> bool {
    v.iter().all(|c| (b'!'..=b'~').contains(c))
}

/// A name CLIENT SETNAME and HELLO SETNAME accept.
pub fn check_name(name: &[u8]) -> CmdResult {
    if valid_attr(name) {
        return Ok(());
    }
    Err(CmdError::Static(
        "ERR Client names cannot contain spaces, newlines or special characters.",
    ))
}

/// CLIENT SETNAME / HELLO SETNAME.
pub fn set_name(ctx: &mut Ctx<'_>, name: &[u8]) -> CmdResult {
    check_name(name)?;
    ctx.conn.client.names().name = name.to_vec();
    ctx.conn.overload.stale();
    Ok(())
}

fn id(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ctx.out.int(ctx.conn.client.id as i64);
    Ok(())
}

fn setname(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    set_name(ctx, args.get(2))?;
    ctx.out.ok();
    Ok(())
}

fn getname(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let names = ctx.conn.client.names();
    if names.name.is_empty() {
        ctx.out.null();
    } else {
        ctx.out.bulk(&names.name);
    }
    Ok(())
}

/// One CLIENT LIST line, fields as Redis 7.2 prints them (memory and
/// buffer fields Citadel does not track are 0; `qbuf` is the input held
/// unrun: a partial request, or requests waiting while the client is
/// parked; for the client asking, `own_input`, its running pass's
/// input); `subs`: its Pub/Sub channels, patterns and shard channels.
pub(super) fn describe(
    out: &mut String,
    c: &ClientShared,
    own_input: Option<usize>,
    subs: [usize; 3],
    now_ms: u64,
) {
    let names = c.names().clone();
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let cmd = by_index(c.last_cmd.load(Ordering::Relaxed) as usize).map_or("NULL", |d| d.name);
    let _ = writeln!(
        out,
        "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi=-1 \
         qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r \
         cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={} io-thread={}",
        c.id,
        c.peer,
        c.local,
        text(&names.name),
        now_ms.saturating_sub(c.created_ms) / 1000,
        now_ms.saturating_sub(c.last_ms.load(Ordering::Relaxed)) / 1000,
        c.flags(subs.iter().any(|&n| n > 0)),
        c.db.load(Ordering::Relaxed),
        subs[0],
        subs[1],
        subs[2],
        own_input.map_or_else(|| c.qbuf.load(Ordering::Relaxed), |n| n as u64),
        c.qbuf_free.load(Ordering::Relaxed),
        cmd,
        text(names.user()),
        c.resp.load(Ordering::Relaxed),
        text(&names.lib_name),
        text(&names.lib_ver),
        c.thread,
    );
}

fn info(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let mut text = String::new();
    let subs = ctx.state.pubsub.counts(ctx.conn.client.id);
    let own = Some(ctx.conn.pass_input);
    describe(
        &mut text,
        &ctx.conn.client,
        own,
        subs,
        ctx.thread.cache.now_ms(),
    );
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn unknown_type(t: &[u8]) -> CmdError {
    CmdError::quoting("ERR Unknown client type '", t, "'")
}

/// Whether `t` names the client type every Citadel client has.
fn is_normal_type(t: &[u8]) -> Result<bool, CmdError> {
    let known = ["normal", "master", "replica", "slave", "pubsub"];
    if !known.iter().any(|k| t.eq_ignore_ascii_case(k.as_bytes())) {
        return Err(unknown_type(t));
    }
    Ok(t.eq_ignore_ascii_case(b"normal"))
}

fn list(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut ids = Vec::new();
    let mut all = true;
    if args.len() == 4 && args.is(2, "type") {
        all = is_normal_type(args.get(3))?;
    } else if args.len() > 3 && args.is(2, "id") {
        for a in args.from(3).iter() {
            match citadel_resp::num::parse_i64(a) {
                Some(id) if id >= 1 => ids.push(id as u64),
                _ => return Err(CmdError::Static("ERR Invalid client ID")),
            }
        }
        all = false;
    } else if args.len() != 2 {
        return Err(CmdError::Syntax);
    }
    let now = ctx.thread.cache.now_ms();
    let mut text = String::new();
    for c in ctx.state.clients.live() {
        if all || ids.contains(&c.id) {
            let own = (c.id == ctx.conn.client.id).then_some(ctx.conn.pass_input);
            describe(&mut text, &c, own, ctx.state.pubsub.counts(c.id), now);
        }
    }
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// Which clients CLIENT KILL's filters select.
#[derive(Default)]
struct KillFilter<'a> {
    id: Option<u64>,
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    /// USER: the clients of this ACL user.
    user: Option<&'a [u8]>,
    /// Only "normal" type filters leave any client selected.
    type_ok: bool,
    max_age: Option<u64>,
    skip_me: bool,
}

impl<'a> KillFilter<'a> {
    fn parse(args: Args<'a>, user_exists: impl Fn(&[u8]) -> bool) -> Result<Self, CmdError> {
        let mut f = KillFilter {
            type_ok: true,
            skip_me: true,
            ..Default::default()
        };
        if args.len() & 1 == 1 {
            return Err(CmdError::Syntax);
        }
        for i in (0..args.len()).step_by(2) {
            let v = args.get(i + 1);
            if args.is(i, "id") {
                match citadel_resp::num::parse_i64(v) {
                    Some(id) if id >= 1 => f.id = Some(id as u64),
                    _ => return Err(CmdError::Static("ERR client-id should be greater than 0")),
                }
            } else if args.is(i, "addr") {
                f.addr = Some(v);
            } else if args.is(i, "laddr") {
                f.laddr = Some(v);
            } else if args.is(i, "type") {
                f.type_ok = is_normal_type(v)?;
            } else if args.is(i, "user") {
                if !user_exists(v) {
                    return Err(CmdError::quoting("ERR No such user '", v, "'"));
                }
                f.user = Some(v);
            } else if args.is(i, "skipme") {
                f.skip_me = match () {
                    _ if v.eq_ignore_ascii_case(b"yes") => true,
                    _ if v.eq_ignore_ascii_case(b"no") => false,
                    _ => return Err(CmdError::Syntax),
                };
            } else if args.is(i, "maxage") {
                f.max_age = Some(args.int(i + 1)?.max(0) as u64);
            } else {
                return Err(CmdError::Syntax);
            }
        }
        Ok(f)
    }

    fn selects(&self, c: &ClientShared, me: u64, now_ms: u64) -> bool {
        self.type_ok
            && !(self.skip_me && c.id == me)
            && self.id.is_none_or(|id| id == c.id)
            && self.user.is_none_or(|u| u == c.names().user())
            && self.addr.is_none_or(|a| a == c.peer.to_string().as_bytes())
            && self
                .laddr
                .is_none_or(|a| a == c.local.to_string().as_bytes())
            && self
                .max_age
                .is_none_or(|age| now_ms.saturating_sub(c.created_ms) / 1000 >= age)
    }
}

fn kill(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let now = ctx.thread.cache.now_ms();
    let me = ctx.conn.client.id;
    // Old form: CLIENT KILL ip:port (may kill the caller itself).
    let (filter, old_form) = if args.len() == 3 {
        (
            KillFilter {
                addr: Some(args.get(2)),
                type_ok: true,
                ..Default::default()
            },
            true,
        )
    } else {
        let exists = |u: &[u8]| ctx.state.acl.get(u).is_some();
        (KillFilter::parse(args.from(2), exists)?, false)
    };
    let mut killed = 0;
    for c in ctx.state.clients.live() {
        if filter.selects(&c, me, now) {
            c.kill();
            killed += 1;
            if c.id == me {
                ctx.conn.close = true;
            }
        }
    }
    if old_form {
        if killed == 0 {
            return Err(CmdError::Static("ERR No such client"));
        }
        ctx.out.ok();
    } else {
        ctx.out.int(killed);
    }
    Ok(())
}

fn setinfo(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (attr, value) = (args.get(2), args.get(3));
    if !valid_attr(value) {
        return Err(CmdError::quoting(
            "ERR ",
            attr,
            " cannot contain spaces, newlines or special characters.",
        ));
    }
    let mut names = ctx.conn.client.names();
    if attr.eq_ignore_ascii_case(b"lib-name") {
        names.lib_name = value.to_vec();
    } else if attr.eq_ignore_ascii_case(b"lib-ver") {
        names.lib_ver = value.to_vec();
    } else {
        return Err(CmdError::quoting("ERR Unrecognized option '", attr, "'"));
    }
    drop(names);
    ctx.conn.overload.stale();
    ctx.out.ok();
    Ok(())
}

/// CLIENT NO-EVICT / NO-TOUCH's ON | OFF.
fn on_off(args: &Args<'_>) -> Result<bool, CmdError> {
    if args.is(2, "on") {
        Ok(true)
    } else if args.is(2, "off") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// NO-EVICT: Citadel never evicts clients (it has no
/// `maxmemory-clients`), so every client already is what ON asks; the
/// mode is kept for CLIENT LIST's `e` flag.
fn no_evict(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let on = on_off(&args)?;
    ctx.conn.client.set_mode(ClientMode::NoEvict, on);
    ctx.out.ok();
    Ok(())
}

/// NO-TOUCH: the client's commands do not count accesses for eviction
/// (except TOUCH, as in Redis): `dispatch` runs them with the cache
/// handle's access counting off.
fn no_touch(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let on = on_off(&args)?;
    ctx.conn.no_touch = on;
    ctx.conn.client.set_mode(ClientMode::NoTouch, on);
    ctx.out.ok();
    Ok(())
}

/// CLIENT REPLY ON | OFF | SKIP (applied after each command, `observe.rs`).
fn reply(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ctx.conn.reply_mode = if args.is(2, "on") {
        ReplyMode::On
    } else if args.is(2, "off") {
        ReplyMode::Off
    } else if args.is(2, "skip") {
        ReplyMode::Skip
    } else {
        return Err(CmdError::Syntax);
    };
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let lines: &[&str] = &[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "GETNAME",
        "    Return the name of the current connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are: ID, ADDR, LADDR, TYPE, USER, SKIPME, MAXAGE.",
        "LIST [TYPE <type>] [ID <id> [<id> ...]]",
        "    Return information about client connections.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "SETINFO <option> <value>",
        "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
        "PAUSE <timeout> [WRITE|ALL]",
        "    Suspend all, or just write, clients for <timeout> milliseconds.",
        "UNPAUSE",
        "    Stop the current client pause, resuming traffic.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "NO-EVICT (ON|OFF)",
        "NO-TOUCH (ON|OFF)",
        "    Accepted; no effect on Citadel.",
        "HELP",
        "    Print this help.",
    ];
    reply_lines(&mut ctx.out, lines);
    Ok(())
}
