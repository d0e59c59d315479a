//! Clients of a thread whose script runs past busy-script-time, answered
//! from the script's hook (`citadel_net`'s stall_door.rs): new connections
//! on a server of one thread (no peer core can take them; with more
//! threads, peers relieve the stalled one and serve its new connections
//! whole, relief.rs), and the thread's own connections whose sessions are
//! plain (`CommandService::stall_plain`: authenticated, not monitoring,
//! replies on) with nothing pending in the loop
//! (stall_peers.rs). As Redis answers clients during a busy script,
//! SCRIPT KILL and FUNCTION KILL act, FUNCTION STATS answers, SHUTDOWN
//! shuts down, QUIT closes a new connection, EXEC aborts, MULTI begins a
//! transaction on a connection with a session (busy_tx.rs keeps its
//! state for the session), and every other command gets `-BUSY`, after
//! the unknown-command, arity, NOAUTH, ACL and RESP2 subscribe-mode
//! checks Redis makes first.
//! AUTH and HELLO from a new connection are answered too (busy_greeting.rs
//! keeps what they set for its session), so `redis-cli -a PASS SCRIPT
//! KILL` works on a server that requires a password.
//! Another command Redis lets through a busy script (AUTH and HELLO on a
//! connection with a session, WATCH, DISCARD, ...; MULTI on a new
//! connection, QUIT on one with a session, any of them inside a
//! transaction, which queues them) is left, with all that follows it, to
//! the session once the script ends; so is everything sent to the RPC
//! door.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use citadel_net::{serve_stalled, Answered, Caller, Door};
use citadel_resp::parse::{Parsed, RequestParser};
use citadel_resp::write::Reply;

use super::acl_check::{check, default_seat, install};
use super::args::Args;
use super::busy_greeting;
use super::busy_tx;
use super::dispatch::resolve;
use super::error::{reply_error, CmdError};
use super::function_stats::write_stats;
use super::pubsub::refusal_in_subscribe_mode;
use super::server::shutdown_args;
use crate::acl::Seat;
use crate::clients::ClientShared;
use crate::command_clock::coarse_monotonic_ms;
use crate::script::busy::{KillError, Slot};
use crate::state::ServerState;

/// How often the hook looks at the door while the script runs.
const POLL_MS: u64 = 10;
/// The longest argument a held connection's command may have (its input
/// is looked at in pieces of 16 KiB: a longer command waits for the
/// session anyway).
const MAX_BULK: usize = 16 << 10;

thread_local! {
    static NEXT_POLL_MS: Cell<u64> = const { Cell::new(0) };
}

/// From the script hook of `slot`'s thread: serves the connections its
/// stalled core took, once the script has run past busy-script-time (at
/// most every `POLL_MS`).
pub fn serve(state: &ServerState, slot: &Slot) {
    let now = coarse_monotonic_ms();
    if now < NEXT_POLL_MS.get() {
        return;
    }
    NEXT_POLL_MS.set(now + POLL_MS);
    let threshold = state
        .settings
        .get(&citadel_settings::server::BUSY_SCRIPT_TIME);
    let Some((ran_ms, function)) = slot.running(now) else {
        return;
    };
    if ran_ms < threshold {
        return;
    }
    let mut parser = RequestParser::default();
    let leave = Answered {
        leave: true,
        ..Answered::default()
    };
    serve_stalled(&mut |caller, input, out| {
        // (The RPC door's frames wait for their session.)
        if caller.door != Door::MAIN {
            return leave;
        }
        match sender(state, caller) {
            Some(mut sender) => answer(state, function, &mut sender, &mut parser, input, out),
            None => leave,
        }
    });
}

/// Who sends the commands answered: a new connection (the `default`
/// user, not yet authenticated when a password is required, until its
/// AUTH or HELLO) or a connection's plain session (authenticated, as its
/// user).
struct Sender {
    caller: Caller,
    authed: bool,
    resp3: bool,
    /// In RESP2 subscribe mode: only the subscription commands, PING, QUIT
    /// and RESET get past Redis's context check.
    subscribed: bool,
    seat: Seat,
    /// A connection with a session (None: a new one, which QUIT closes
    /// here): its transaction is kept across the script (busy_tx.rs).
    client: Option<Arc<ClientShared>>,
}

/// The sender of `caller`'s commands; None when its client or user is gone
/// (its session answers).
fn sender(state: &ServerState, caller: Caller) -> Option<Sender> {
    if !caller.has_session {
        let greeting = busy_greeting::get(caller.id);
        let seat = greeting.as_ref().and_then(|g| g.seat.clone());
        return Some(Sender {
            caller,
            authed: seat.is_some() || !state.auth_required(),
            resp3: greeting.is_some_and(|g| g.resp3),
            subscribed: false,
            seat: seat.unwrap_or_else(|| default_seat(state)),
            client: None,
        });
    }
    let client = state.clients.get(caller.id)?;
    let user = client.names().user().to_vec();
    install(state);
    // ORDERING: Relaxed: what its own thread's session set.
    let resp3 = client.resp.load(Ordering::Relaxed) == 3;
    let subscribed = client.subscribed.load(Ordering::Relaxed);
    Some(Sender {
        caller,
        authed: true,
        resp3,
        subscribed: subscribed && !resp3,
        seat: state.acl.seat(&user)?,
        client: Some(client),
    })
}

/// What one command gets.
enum Verdict {
    Answered,
    /// Answered, and it may have changed who the sender is (AUTH, HELLO).
    Greeted,
    Close,
    Leave,
}

/// Answers the complete commands at the start of `input`.
fn answer(
    state: &ServerState,
    function: bool,
    sender: &mut Sender,
    parser: &mut RequestParser,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Answered {
    let mut at = 0;
    loop {
        parser.reset();
        let rest = &input[at..];
        match parser.parse(rest, MAX_BULK, sender.authed) {
            Parsed::Command { end, inline } => {
                let args = Args::new(parser.buf(rest, inline), &parser.args);
                match verdict(state, function, sender, args, out) {
                    Verdict::Answered => at += end,
                    Verdict::Greeted => {
                        at += end;
                        match self::sender(state, sender.caller) {
                            Some(now) => *sender = now,
                            None => {
                                return Answered {
                                    consumed: at,
                                    close: false,
                                    leave: true,
                                }
                            }
                        }
                    }
                    Verdict::Close => {
                        return Answered {
                            consumed: at + end,
                            close: true,
                            leave: false,
                        }
                    }
                    Verdict::Leave => {
                        return Answered {
                            consumed: at,
                            close: false,
                            leave: true,
                        }
                    }
                }
            }
            Parsed::Empty { end } => at += end,
            Parsed::Incomplete { .. } => {
                return Answered {
                    consumed: at,
                    ..Answered::default()
                }
            }
            // (The session answers the protocol error and closes.)
            Parsed::Error(_) => {
                return Answered {
                    consumed: at,
                    close: false,
                    leave: true,
                }
            }
        }
    }
}

fn verdict(
    state: &ServerState,
    function: bool,
    sender: &Sender,
    args: Args<'_>,
    out: &mut Vec<u8>,
) -> Verdict {
    let mut reply = Reply::new(out, sender.resp3);
    // (A refusal inside a transaction makes its EXEC abort, as in Redis.)
    let tx = sender.client.as_deref();
    let Some((idx, def)) = resolve(&mut reply, args) else {
        busy_tx::refused(tx);
        return Verdict::Answered;
    };
    let refusal = if !def.arity_ok(args.len()) {
        Some(CmdError::Arity(def.name))
    } else if def.name == "quit" {
        if tx.is_some() {
            // (The session closes its connection.)
            return Verdict::Leave;
        }
        reply.ok();
        return Verdict::Close;
    } else if def.has_flag("no_auth") {
        let id = sender.caller.id;
        match (tx.is_none(), def.name) {
            (true, "auth") => busy_greeting::auth(state, id, args, &mut reply),
            (true, "hello") => busy_greeting::hello(state, id, sender.authed, args, &mut reply),
            // (A session authenticates itself.)
            _ => return Verdict::Leave,
        }
        return Verdict::Greeted;
    } else if !sender.authed {
        Some(CmdError::NoAuth)
    } else {
        let seat = &sender.seat;
        let denied = !seat.unrestricted && check(&seat.user.selector, idx, def, args).is_some();
        match denied {
            true => Some(CmdError::NoPermCommand(def.name)),
            false => refusal_in_subscribe_mode(sender.subscribed, def.name),
        }
    };
    if let Some(e) = refusal {
        reply_error(&mut reply, &e);
        busy_tx::refused(tx);
        return Verdict::Answered;
    }
    let busy = match function {
        true => KillError::IsFunction,
        false => KillError::IsEval,
    }
    .text();
    if def.name == "exec" {
        // Refused like any command, and as Redis refuses EXEC: its
        // transaction, if any, is discarded.
        busy_tx::discarded(tx);
        let text = format!("EXECABORT Transaction discarded because of: {busy}");
        reply_error(&mut reply, &CmdError::Text(text));
        return Verdict::Answered;
    }
    if busy_tx::in_multi(tx) && def.has_flag("allow_busy") {
        // (Queued by the session once the script ends, or refused there:
        // MULTI nested, WATCH inside MULTI.)
        return Verdict::Leave;
    }
    let kill = |eval: bool, reply: &mut Reply<'_>| {
        let threshold = state
            .settings
            .get(&citadel_settings::server::BUSY_SCRIPT_TIME);
        match state.scripts.busy.kill(eval, threshold) {
            Ok(()) => reply.ok(),
            Err(e) => reply_error(reply, &CmdError::Static(e.text())),
        }
    };
    match def.name {
        "script|kill" => kill(true, &mut reply),
        "function|kill" => kill(false, &mut reply),
        "shutdown" => match shutdown_args(args) {
            Ok(()) => {
                state.shutdown.request();
                return Verdict::Close;
            }
            Err(e) => reply_error(&mut reply, &e),
        },
        "function|stats" => write_stats(&state.scripts, &mut reply),
        "multi" if tx.is_some() => {
            busy_tx::begun(tx);
            reply.ok();
        }
        _ if def.has_flag("allow_busy") => return Verdict::Leave,
        _ => {
            reply_error(&mut reply, &CmdError::Static(busy));
            busy_tx::refused(tx);
        }
    }
    Verdict::Answered
}
