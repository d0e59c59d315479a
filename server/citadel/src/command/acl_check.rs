//! Where commands meet the ACL: the command catalog the rules name, the
//! per-command permission check (command, keys, channels) at the top
//! level, at EXEC and inside scripts, and the ACL LOG entries refusals
//! leave. An unrestricted user (the default one) costs one generation
//! compare and one flag test per command.

use std::sync::OnceLock;

use super::acl_keys;
use super::args::Args;
use super::context::ConnState;
use super::docs::categories;
use super::error::CmdError;
use super::table::{self, CommandDef};
use crate::acl::catalog::{category_bit, Catalog, Entry};
use crate::acl::log::{self, Context, Reason};
use crate::acl::user::Selector;
use crate::acl::Seat;
use crate::state::ServerState;

/// Every command and subcommand with its categories (built once).
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut list = Vec::new();
        for (i, def) in (0..).map_while(|i| table::by_index(i).map(|d| (i, d))) {
            let mut bits = 0;
            for cat in categories(def) {
                bits |= category_bit(cat.trim_start_matches('@').as_bytes()).unwrap_or(0);
            }
            let parent = def
                .name
                .split_once('|')
                .and_then(|(p, _)| table::lookup(p.as_bytes()))
                .map(|(p, _)| p);
            let subs = def
                .subcommands
                .iter()
                .filter_map(|s| table::lookup_sub(def, s.leaf_name().as_bytes()))
                .map(|(j, _)| j)
                .collect();
            list.push((
                i,
                Entry {
                    name: def.name,
                    categories: bits,
                    subs,
                    parent,
                },
            ));
        }
        Catalog::new(list)
    })
}

/// Installs the catalog in the server's ACL (once; later calls do nothing).
pub fn install(state: &ServerState) {
    state.acl.install(catalog());
}

/// A new connection's seat: the `default` user.
pub fn default_seat(state: &ServerState) -> Seat {
    install(state);
    state
        .acl
        .seat(b"default")
        .unwrap_or_else(|| state.acl.nobody(b"default"))
}

/// Why the ACL refused a command, and the argument it names.
pub struct Denial<'a> {
    pub reason: Reason,
    /// The key or channel refused (none for the command itself).
    pub object: Option<&'a [u8]>,
}

/// Refreshes the connection's user if the table changed since; a deleted
/// user's connection closes, as Redis closes them.
#[inline]
pub fn refresh(state: &ServerState, conn: &mut ConnState) {
    if !conn.acl.current(&state.acl) {
        refresh_slow(state, conn);
    }
}

#[cold]
fn refresh_slow(state: &ServerState, conn: &mut ConnState) {
    let name = conn.acl.user.name.clone();
    conn.acl = match state.acl.seat(&name) {
        Some(seat) => seat,
        None => {
            conn.client.kill();
            conn.close = true;
            state.acl.nobody(&name)
        }
    };
}

/// Checks the command for the connection's user (its snapshot refreshed
/// first); a refusal is logged with `context` and its reason returned.
fn denied(
    state: &ServerState,
    conn: &mut ConnState,
    (idx, def, args): (usize, &CommandDef, Args<'_>),
    context: Context,
) -> Option<Reason> {
    refresh(state, conn);
    if conn.acl.unrestricted {
        return None;
    }
    let denial = check(&conn.acl.user.selector, idx, def, args)?;
    record(state, conn, &denial, def, context);
    Some(denial.reason)
}

/// Whether the connection's user may run the command, as `denied` judges
/// it but recording nothing (`redis.acl_check_cmd`).
pub fn allows(
    state: &ServerState,
    conn: &mut ConnState,
    idx: usize,
    def: &CommandDef,
    args: Args<'_>,
) -> bool {
    refresh(state, conn);
    conn.acl.unrestricted || check(&conn.acl.user.selector, idx, def, args).is_none()
}

/// The top-level check (also at MULTI's queue time), after the arity and
/// NOAUTH checks as in Redis.
#[inline]
pub fn refuse(
    state: &ServerState,
    conn: &mut ConnState,
    idx: usize,
    def: &CommandDef,
    args: Args<'_>,
) -> Option<CmdError> {
    if conn.acl.unrestricted && conn.acl.current(&state.acl) {
        return None;
    }
    let context = if conn.tx.in_multi {
        Context::Multi
    } else {
        Context::Toplevel
    };
    Some(match denied(state, conn, (idx, def, args), context)? {
        Reason::Key => CmdError::NoPermKey,
        Reason::Channel => CmdError::NoPermChannel,
        _ => CmdError::NoPermCommand(def.name),
    })
}

/// EXEC's check of a queued command (the rules may have changed since it
/// queued), with Redis's texts.
pub fn refuse_at_exec(
    state: &ServerState,
    conn: &mut ConnState,
    idx: usize,
    def: &CommandDef,
    args: Args<'_>,
) -> Option<CmdError> {
    let why = match denied(state, conn, (idx, def, args), Context::Multi)? {
        Reason::Key => "no permission to touch the specified keys",
        Reason::Channel => "no permission to access one of the channels used as arguments",
        _ => "no permission to execute the command or subcommand",
    };
    Some(CmdError::Text(format!(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {why}"
    )))
}

/// A script's check of a command it calls: the error text the script
/// gets (Redis's), or None.
pub fn refuse_in_script(
    state: &ServerState,
    conn: &mut ConnState,
    idx: usize,
    def: &CommandDef,
    args: Args<'_>,
) -> Option<&'static [u8]> {
    Some(match denied(state, conn, (idx, def, args), Context::Lua)? {
        Reason::Key => &b"ERR The user executing the script can't access at least one of the keys mentioned in the command arguments"[..],
        Reason::Channel => b"ERR The user executing the script can't publish to the channel mentioned in the command",
        _ => b"ERR The user executing the script can't run this command or subcommand",
    })
}

/// Whether `selector` lets the command run (Redis's ACLSelectorCheckCmd):
/// the command (or its first argument), every key for what the command
/// does with it, every channel it publishes or subscribes to.
pub fn check<'a>(s: &Selector, idx: usize, def: &CommandDef, args: Args<'a>) -> Option<Denial<'a>> {
    if def.has_flag("no_auth") {
        return None;
    }
    let first_arg_at = if def.name.contains('|') { 2 } else { 1 };
    let first_arg = (args.len() > first_arg_at).then(|| args.get(first_arg_at));
    if !s.allows_command(idx, first_arg) {
        return Some(Denial {
            reason: Reason::Command,
            object: None,
        });
    }
    if !s.all_keys {
        let refused = acl_keys::find_key(def, args, |k, a| s.allows_key(k, a.read, a.write));
        if let Some(key) = refused {
            return Some(Denial {
                reason: Reason::Key,
                object: Some(key),
            });
        }
    }
    if !s.all_channels {
        let (from, to, pattern) = match def.name {
            "subscribe" | "ssubscribe" => (1, args.len(), false),
            "psubscribe" => (1, args.len(), true),
            "publish" | "spublish" => (1, args.len().min(2), false),
            _ => (0, 0, false),
        };
        for i in from..to {
            if !s.allows_channel(args.get(i), pattern) {
                return Some(Denial {
                    reason: Reason::Channel,
                    object: Some(args.get(i)),
                });
            }
        }
    }
    None
}

/// Adds a refusal to the ACL LOG.
fn record(
    state: &ServerState,
    conn: &ConnState,
    denial: &Denial<'_>,
    def: &CommandDef,
    context: Context,
) {
    let object = denial.object.unwrap_or(def.name.as_bytes()).to_vec();
    let username = conn.acl.user.name.clone();
    log_entry(state, conn, denial.reason, context, object, username);
}

/// Adds an entry to the ACL LOG for this connection.
pub fn log_entry(
    state: &ServerState,
    conn: &ConnState,
    reason: Reason,
    context: Context,
    object: Vec<u8>,
    username: Vec<u8>,
) {
    let now = citadel_cache::unix_millis();
    let mut info = String::new();
    let subs = state.pubsub.counts(conn.client.id);
    super::client::describe(&mut info, &conn.client, Some(conn.pass_input), subs, now);
    let client_info = info.trim_end().to_owned();
    add_log_entry(state, client_info, reason, context, object, username);
}

/// An ACL LOG entry for a client described by `client_info`.
pub fn add_log_entry(
    state: &ServerState,
    client_info: String,
    reason: Reason,
    context: Context,
    object: Vec<u8>,
    username: Vec<u8>,
) {
    let now = citadel_cache::unix_millis();
    state.acl.log.add(log::Entry {
        count: 1,
        reason,
        context,
        object,
        username,
        at_ms: now,
        client_info,
    });
}

/// Makes `seat` the connection's user (AUTH, HELLO AUTH, RESET).
pub fn seat_user(conn: &mut ConnState, seat: Seat) {
    let name = seat.user.name.clone();
    conn.acl = seat;
    conn.client.names().acl_user = name;
    conn.overload.stale();
}

/// Closes the connections of these users (ACL DELUSER, ACL LOAD), as
/// Redis does; the caller's own closes once its reply is sent.
pub fn disconnect_users(state: &ServerState, names: &[Vec<u8>], conn: &mut ConnState) {
    for client in state.clients.snapshot() {
        let user = client.names().user().to_vec();
        if names.contains(&user) {
            if client.id == conn.client.id {
                conn.close = true;
            } else {
                client.kill();
            }
        }
    }
}

/// After ACL SETUSER: closes the user's connections subscribed to a
/// channel or pattern the user may no longer use (Redis 7.0's
/// ACLKillPubsubClientsIfNeeded).
pub fn disconnect_lost_subscribers(state: &ServerState, name: &[u8], conn: &mut ConnState) {
    use crate::pubsub::Kind;
    let Some(user) = state.acl.get(name) else {
        return;
    };
    let s = &user.selector;
    if s.all_channels {
        return;
    }
    for client in state.clients.snapshot() {
        if client.names().user() != name {
            continue;
        }
        let lost = [Kind::Channel, Kind::Shard, Kind::Pattern]
            .into_iter()
            .any(|kind| {
                let pattern = kind == Kind::Pattern;
                let names = state.pubsub.names(client.id, kind);
                names.iter().any(|n| !s.allows_channel(n, pattern))
            });
        if lost {
            if client.id == conn.client.id {
                conn.close = true;
            } else {
                client.kill();
            }
        }
    }
}
