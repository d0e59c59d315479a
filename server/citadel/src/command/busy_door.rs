//! New connections while a script runs past busy-script-time on a server of
//! one thread, answered from the script's hook (`citadel_net`'s
//! stall_door.rs: no peer core can take them): as Redis answers clients
//! during a busy script, SCRIPT KILL and FUNCTION KILL act, SHUTDOWN shuts
//! down, QUIT closes, and every other command gets `-BUSY`, after the
//! unknown-command, arity, NOAUTH and ACL checks Redis makes first. A
//! command Redis lets through a busy script that would change the
//! connection (AUTH, HELLO, MULTI, EXEC, WATCH, ...) is left, with all
//! that follows it, to the session the connection gets when the script
//! ends; so is everything sent to the RPC door. With more threads, peers
//! relieve the stalled one and serve its new connections whole
//! (`citadel_net`'s relief.rs).

use std::cell::Cell;

use citadel_net::{serve_stalled, Answered, Door};
use citadel_resp::parse::{Parsed, RequestParser};
use citadel_resp::write::Reply;

use super::acl_check::{check, default_seat};
use super::args::Args;
use super::dispatch::resolve;
use super::error::{reply_error, CmdError};
use super::server::shutdown_args;
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
    serve_stalled(&mut |door, input, out| match door == Door::MAIN {
        true => answer(state, function, &mut parser, input, out),
        // (The RPC door's frames wait for their session.)
        false => Answered {
            leave: true,
            ..Answered::default()
        },
    });
}

/// What one command gets.
enum Verdict {
    Answered,
    Close,
    Leave,
}

/// Answers the complete commands at the start of `input`.
fn answer(
    state: &ServerState,
    function: bool,
    parser: &mut RequestParser,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Answered {
    let authed = !state.auth_required();
    let mut at = 0;
    loop {
        parser.reset();
        let rest = &input[at..];
        match parser.parse(rest, MAX_BULK, authed) {
            Parsed::Command { end, inline } => {
                let args = Args::new(parser.buf(rest, inline), &parser.args);
                match verdict(state, function, args, out) {
                    Verdict::Answered => at += end,
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

fn verdict(state: &ServerState, function: bool, args: Args<'_>, out: &mut Vec<u8>) -> Verdict {
    let mut reply = Reply::new(out, false);
    let Some((idx, def)) = resolve(&mut reply, args) else {
        return Verdict::Answered;
    };
    let refusal = if !def.arity_ok(args.len()) {
        Some(CmdError::Arity(def.name))
    } else if def.name == "quit" {
        reply.ok();
        return Verdict::Close;
    } else if def.has_flag("no_auth") {
        // AUTH, HELLO: the session authenticates.
        return Verdict::Leave;
    } else if state.auth_required() {
        Some(CmdError::NoAuth)
    } else {
        let seat = default_seat(state);
        let denied = !seat.unrestricted && check(&seat.user.selector, idx, def, args).is_some();
        denied.then_some(CmdError::NoPermCommand(def.name))
    };
    if let Some(e) = refusal {
        reply_error(&mut reply, &e);
        return Verdict::Answered;
    }
    let threshold = state
        .settings
        .get(&citadel_settings::server::BUSY_SCRIPT_TIME);
    let kill = |eval: bool, reply: &mut Reply<'_>| match state.scripts.busy.kill(eval, threshold) {
        Ok(()) => reply.ok(),
        Err(e) => reply_error(reply, &CmdError::Static(e.text())),
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
        _ if def.has_flag("allow_busy") => return Verdict::Leave,
        _ => {
            let busy = match function {
                true => KillError::IsFunction,
                false => KillError::IsEval,
            };
            reply_error(&mut reply, &CmdError::Static(busy.text()));
        }
    }
    Verdict::Answered
}
