//! AUTH and HELLO from a connection accepted while a busy script stalls
//! its thread (busy_door.rs), answered as Redis answers them then (both
//! are allowed through a busy script): an operator's `redis-cli -a PASS
//! SCRIPT KILL` authenticates, then kills. The connection has no session
//! yet, so what they set (its user, protocol and name) is kept here under
//! the id the loop gave it at accept, and its session starts from it when
//! the loop adopts the connection (`take`), later in the same loop turn.

use std::cell::{Cell, RefCell};

use citadel_resp::write::Reply;

use super::args::Args;
use super::client::check_name;
use super::connection::{auth_credentials, check_credentials, write_hello, Hello, HELLO_NOAUTH};
use super::error::CmdError;
use crate::acl::log::{Context, Reason};
use crate::acl::Seat;
use crate::state::ServerState;

/// What a new connection said of itself before it had a session.
#[derive(Clone)]
pub struct Greeting {
    /// Set once AUTH or HELLO AUTH succeeded.
    pub seat: Option<Seat>,
    pub resp3: bool,
    pub name: Option<Vec<u8>>,
}

/// A greeting, the connection it is of and the loop turn it was made in.
struct Greeted {
    id: u64,
    turn: u64,
    greeting: Greeting,
}

thread_local! {
    static GREETED: RefCell<Vec<Greeted>> = const { RefCell::new(Vec::new()) };
    /// The loop turns of this thread (`next_turn`).
    static TURN: Cell<u64> = const { Cell::new(0) };
}

/// A loop turn begins (`Service::turn`): the connections greeted in
/// earlier turns were adopted at their end, or closed unadopted.
pub fn next_turn() {
    TURN.set(TURN.get().wrapping_add(1));
}

/// What connection `id` said so far, if anything.
pub fn get(id: u64) -> Option<Greeting> {
    GREETED.with_borrow(|all| {
        let found = all.iter().find(|g| g.id == id);
        found.map(|g| g.greeting.clone())
    })
}

/// The greeting of connection `id`, whose session is being opened.
pub fn take(id: u64) -> Option<Greeting> {
    GREETED.with_borrow_mut(|all| {
        let at = all.iter().position(|g| g.id == id)?;
        Some(all.swap_remove(at).greeting)
    })
}

fn update(id: u64, change: impl FnOnce(&mut Greeting)) {
    let turn = TURN.get();
    GREETED.with_borrow_mut(|all| {
        // A connection greeted in an earlier turn was adopted (the turn
        // after its stall) or closed before it could be.
        all.retain(|g| g.turn == turn);
        let at = match all.iter().position(|g| g.id == id) {
            Some(at) => at,
            None => {
                let greeting = Greeting {
                    seat: None,
                    resp3: false,
                    name: None,
                };
                all.push(Greeted { id, turn, greeting });
                all.len() - 1
            }
        };
        change(&mut all[at].greeting);
    });
}

/// AUTH from new connection `id`: its reply in `reply`.
pub fn auth(state: &ServerState, id: u64, args: Args<'_>, reply: &mut Reply<'_>) {
    let authed = auth_credentials(state, args)
        .and_then(|(user, pass)| authenticate(state, id, args.get(0), user, pass));
    match authed {
        Ok(()) => reply.ok(),
        Err(e) => super::error::reply_error(reply, &e),
    }
}

/// HELLO from new connection `id` (`authed`: already authenticated, or
/// no password is required): its reply in `reply`, in the protocol it
/// asked for.
pub fn hello(state: &ServerState, id: u64, authed: bool, args: Args<'_>, reply: &mut Reply<'_>) {
    if let Err(e) = greet(state, id, authed, args, reply) {
        super::error::reply_error(reply, &e);
    }
}

fn greet(
    state: &ServerState,
    id: u64,
    mut authed: bool,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    let hello = Hello::parse(args)?;
    if let Some((user, pass)) = hello.credentials {
        authenticate(state, id, args.get(0), user, pass)?;
        authed = true;
    }
    if !authed {
        return Err(CmdError::Static(HELLO_NOAUTH));
    }
    if let Some(name) = hello.name {
        check_name(name)?;
        update(id, |g| g.name = Some(name.to_vec()));
    }
    if let Some(resp3) = hello.resp3 {
        update(id, |g| g.resp3 = resp3);
        reply.resp3 = resp3;
    }
    write_hello(reply, reply.resp3, id);
    Ok(())
}

/// Makes `user` connection `id`'s user when `pass` opens it; a failure is
/// logged (ACL LOG, reason `auth`), the client named by its id (it has no
/// session to describe yet).
fn authenticate(
    state: &ServerState,
    id: u64,
    command: &[u8],
    user: &[u8],
    pass: &[u8],
) -> Result<(), CmdError> {
    match check_credentials(state, user, pass) {
        Some(seat) => {
            update(id, |g| g.seat = Some(seat));
            Ok(())
        }
        None => {
            let info = format!("id={id}");
            let (reason, context) = (Reason::Auth, Context::Toplevel);
            let username = user.to_vec();
            super::acl_check::add_log_entry(
                state,
                info,
                reason,
                context,
                command.to_vec(),
                username,
            );
            Err(CmdError::WrongPass)
        }
    }
}
