//! The hot path of `redis.call` / `redis.pcall`: two raw C functions made
//! once per state (not per run), which reach the running script's [`Host`]
//! through `run_host::RunHost`, a cell the engine fills for the length of
//! one run.
//!
//! They are raw Lua C functions, not mlua callbacks: mlua's callback
//! wrapper (a panic guard, a reserved error value, a reference slot per
//! argument or result) cost more per call than the command it ran. The
//! arguments are read straight off the Lua stack into the state's scratch
//! buffers and the common replies (integer, bulk, null, status, error) are
//! pushed straight back; nested replies go through `convert`. A failed
//! `redis.call` raises its `{err=...}` table as the Lua error, as Redis
//! does. A call whose results its caller discards (a statement) gets no
//! flat reply pushed at all (`results.rs`): no `{ok="OK"}` table to make
//! and collect per SET.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use citadel_resp::num;
use mlua::{ffi, Function, Lua, Value};

use super::api::{self, CallScratch};
use super::busy::Slot;
use super::convert::{error_text, reply_to_lua};
use super::results;
use super::sandbox;
use super::{CallArgs, CallRules, Host};

const LOADING: &[u8] = b"ERR redis.call is not available while loading a library";
const BAD_ARG: &[u8] = b"ERR Lua redis lib command arguments must be strings or integers";
const NO_ARGS: &[u8] = b"ERR Please specify at least one argument for this redis lib call";
const PANICKED: &[u8] = b"ERR the command called by the script failed unexpectedly";

/// Upvalues of `redis.call` / `redis.pcall`: the `CallState`, then the
/// strings of the `{ok=...}` / `{err=...}` tables they return, interned
/// once with the closure, not looked up again per call.
const UP_STATE: c_int = 1;
const UP_OK: c_int = 2;
const UP_ERR: c_int = 3;
/// The status text of most writes.
const UP_OK_TEXT: c_int = 4;
const UPVALUES: c_int = 4;

/// What the C functions reach through their upvalue (a light userdata):
/// owned by the engine, which outlives every call of them.
pub struct CallState {
    lua: Lua,
    shared: Rc<api::Shared>,
    slot: Arc<Slot>,
    /// `results::probe` passed: a discarded reply may be left unmade.
    skip_discarded: bool,
    /// `redis.call`'s buffers, kept between calls (borrowed while in use;
    /// calls never nest, and a nested one would only start empty); with
    /// the state they serve rather than moved out of a thread-local and
    /// back per call.
    scratch: RefCell<CallScratch>,
}

/// The permanent `redis.call` and `redis.pcall`, and the state they point
/// to (keep it as long as the Lua state).
pub fn functions(
    lua: &Lua,
    shared: Rc<api::Shared>,
    slot: Arc<Slot>,
) -> mlua::Result<(Function, Function, Box<CallState>)> {
    let state = Box::new(CallState {
        lua: lua.clone(),
        shared,
        slot,
        skip_discarded: results::probe(lua),
        scratch: RefCell::default(),
    });
    let ptr = &*state as *const CallState as *mut c_void;
    let make = |f: ffi::lua_CFunction| {
        // SAFETY: five pushes after making room (the closure takes four),
        // then the closure is popped into a reference; no Lua error is
        // raised without a memory bound (an allocation failure aborts, as
        // mlua assumes for its own pushes).
        lua.exec_raw_lua(|raw| unsafe {
            let l = raw.state();
            if ffi::lua_checkstack(l, 5) == 0 {
                return Err(mlua::Error::StackError);
            }
            ffi::lua_pushlightuserdata(l, ptr);
            for text in [&b"ok"[..], b"err", b"OK"] {
                ffi::lua_pushlstring(l, text.as_ptr() as *const c_char, text.len());
            }
            ffi::lua_pushcclosure(l, f, UPVALUES);
            match raw.pop_value() {
                Value::Function(f) => Ok(f),
                _ => Err(mlua::Error::StackError),
            }
        })
    };
    Ok((make(redis_call)?, make(redis_pcall)?, state))
}

/// `redis.call`: raises the command's error.
unsafe extern "C-unwind" fn redis_call(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a C function made by `functions`.
    unsafe { call(l, true) }
}

/// `redis.pcall`: returns the command's error as `{err=...}`.
unsafe extern "C-unwind" fn redis_pcall(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a C function made by `functions`.
    unsafe { call(l, false) }
}

/// Runs the call (`run`, which leaves the reply on the stack unless the
/// caller discards it), then raises it when it failed and `raise`.
///
/// # Safety
/// `l` is the calling state of a closure made by `functions`. `lua_error`
/// unwinds by longjmp to the script's protected call: this frame holds
/// only a pointer and integers, nothing with a destructor, and `run` has
/// returned by then (its values dropped), so skipping it is sound.
unsafe fn call(l: *mut ffi::lua_State, raise: bool) -> c_int {
    // SAFETY: upvalue `UP_STATE` is the `CallState` the engine keeps alive.
    let state =
        unsafe { &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(UP_STATE)) as *const CallState) };
    // SAFETY: `l` runs this C function; the probe passed for this build.
    let keep = !(state.skip_discarded && unsafe { results::discarded(l) });
    // A panic must not unwind into Lua's C frames: the command's failure
    // becomes an error reply.
    let pushed = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as this function's contract.
        unsafe { run(l, state, keep) }
    }))
    .unwrap_or_else(|payload| {
        drop(payload);
        tracing::error!("a command called by a script panicked");
        let _ = sandbox::bound_memory(&state.lua, false);
        // SAFETY: as this function's contract; with the bound off this
        // push raises nothing either.
        unsafe { push_error(l, PANICKED) };
        let _ = sandbox::bound_memory(&state.lua, true);
        Pushed::Failed
    });
    match pushed {
        Pushed::Failed if raise => {
            // SAFETY: the error table is on top (see above for the jump).
            unsafe { ffi::lua_error(l) }
        }
        Pushed::Nothing => 0,
        Pushed::Reply | Pushed::Failed => 1,
    }
}

/// What a call left on the stack.
enum Pushed {
    /// Its reply, not an error.
    Reply,
    /// Its error reply (`{err=...}`).
    Failed,
    /// Nothing: a flat reply the caller discards.
    Nothing,
}

/// Packs the arguments, runs the command and pushes its reply as one Lua
/// value, or nothing for a flat reply when not `keep`. Raises no Lua
/// error: a push that allocates (a string, a table) runs with the memory
/// bound off (an allocation failure then aborts instead, as mlua assumes
/// for its own unprotected pushes; see `sandbox`); reading the arguments,
/// the command itself and pushing a number or a boolean allocate nothing
/// in Lua, so a SET whose reply is discarded or an INCR toggles no bound.
///
/// # Safety
/// `l` is the calling state of a closure made by `functions`, its
/// arguments the whole stack (a C function's frame, LUA_MINSTACK free).
unsafe fn run(l: *mut ffi::lua_State, state: &CallState, keep: bool) -> Pushed {
    let mut nested = CallScratch::default();
    let mut kept = state.scratch.try_borrow_mut();
    let scratch = match kept.as_deref_mut() {
        Ok(kept) => kept,
        Err(_) => &mut nested,
    };
    // Empty first: a call that panicked left its buffers as they were.
    scratch.keep_if_small();
    // SAFETY: as this function's contract.
    let pushed = unsafe { run_pushing(l, state, scratch, keep) };
    scratch.keep_if_small();
    drop(kept);
    pushed
}

/// `run` with the scratch buffers borrowed.
///
/// # Safety
/// As `run`.
unsafe fn run_pushing(
    l: *mut ffi::lua_State,
    state: &CallState,
    scratch: &mut CallScratch,
    keep: bool,
) -> Pushed {
    // SAFETY: the arguments are at 1..=top of this frame.
    let bad = unsafe { pack(l, scratch) };
    let shared = &state.shared;
    let refusal = if !shared.run_host.is_running() {
        Some(LOADING)
    } else if bad {
        Some(BAD_ARG)
    } else if scratch.spans.is_empty() {
        Some(NO_ARGS)
    } else {
        None
    };
    let ran = match refusal {
        Some(_) => None,
        None => shared.run_host.with(|host, read_only| {
            let rules = CallRules {
                read_only,
                resp3: shared.resp3.get(),
            };
            call_host(&rules, host, &state.slot, scratch);
        }),
    };
    if ran.is_some() {
        if !keep && is_flat_value(&scratch.reply) {
            return Pushed::Nothing;
        }
        // SAFETY: as this function's contract; no allocation, no bound needed.
        if unsafe { push_plain(l, &scratch.reply) } {
            return Pushed::Reply;
        }
    }
    let _ = sandbox::bound_memory(&state.lua, false);
    // SAFETY: as this function's contract, with the bound off.
    let failed = unsafe {
        match ran {
            Some(()) => push_reply(l, &state.lua, &scratch.reply),
            None => {
                push_error(l, refusal.unwrap_or(LOADING));
                true
            }
        }
    };
    let _ = sandbox::bound_memory(&state.lua, true);
    match failed {
        true => Pushed::Failed,
        false => Pushed::Reply,
    }
}

/// Pushes `reply` when it is an integer (a Lua number) or a null bulk
/// (false), which allocate nothing; false (nothing pushed) otherwise.
///
/// # Safety
/// `l` is in a C frame with a free slot.
unsafe fn push_plain(l: *mut ffi::lua_State, reply: &[u8]) -> bool {
    let body = reply
        .get(1..reply.len().saturating_sub(2))
        .unwrap_or_default();
    let flat = reply.ends_with(b"\r\n");
    // SAFETY: one push that allocates nothing, so raises nothing.
    unsafe {
        match reply.first() {
            Some(b':') if flat => match num::parse_i64(body) {
                Some(n) => ffi::lua_pushnumber(l, n as f64),
                None => return false,
            },
            Some(b'$') if body == b"-1" => ffi::lua_pushboolean(l, 0),
            _ => return false,
        }
    }
    true
}

/// Whether `reply` is a single value that is no error (integer, status,
/// bulk or null, RESP3 null, boolean, double): its conversion cannot fail,
/// so leaving it unmade changes nothing a script can see.
fn is_flat_value(reply: &[u8]) -> bool {
    matches!(reply.first(), Some(b':' | b'+' | b'$' | b'_' | b'#' | b','))
}

fn call_host(rules: &CallRules, host: &mut dyn Host, slot: &Slot, scratch: &mut CallScratch) {
    let argv = CallArgs {
        buf: &scratch.args,
        spans: &scratch.spans,
    };
    if host.call(argv, rules, &mut scratch.reply) {
        slot.mark_written();
    }
}

/// Packs the call's arguments into the scratch buffers as the command
/// layer's arguments are; true when one was neither a string nor a number
/// (packing stopped there).
///
/// # Safety
/// The arguments are the whole stack of `l`'s current C frame.
unsafe fn pack(l: *mut ffi::lua_State, scratch: &mut CallScratch) -> bool {
    // SAFETY: indices 1..=top are valid; reading a type, a
    // string's own bytes (no conversion, no allocation) or a number raises
    // no Lua error; the bytes stay valid on the stack past the copy.
    unsafe {
        for idx in 1..=ffi::lua_gettop(l) {
            let start = scratch.args.len();
            match ffi::lua_type(l, idx) {
                ffi::LUA_TSTRING => {
                    let mut len = 0;
                    let ptr = ffi::lua_tolstring(l, idx, &mut len);
                    scratch
                        .args
                        .extend_from_slice(std::slice::from_raw_parts(ptr as *const u8, len));
                }
                ffi::LUA_TNUMBER => {
                    let mut text = [0u8; 40];
                    let len = number_text(ffi::lua_tonumber(l, idx), &mut text);
                    scratch.args.extend_from_slice(&text[..len]);
                }
                _ => return true,
            }
            scratch.spans.push(start..scratch.args.len());
        }
    }
    false
}

/// Pushes the one RESP reply in `buf` as a Lua value (Redis's conversion,
/// see `convert`); true when it is an error reply (`{err=...}`). Status,
/// error and bulk replies are pushed directly (integers and nulls by
/// `push_plain` first); nested ones are built by `convert`.
///
/// # Safety
/// `l` is `lua`'s current state in a C frame with 3 free slots; no memory
/// bound is set.
unsafe fn push_reply(l: *mut ffi::lua_State, lua: &Lua, buf: &[u8]) -> bool {
    let body = buf.get(1..buf.len().saturating_sub(2)).unwrap_or_default();
    let flat = buf.ends_with(b"\r\n") && !body.contains(&b'\n');
    // SAFETY: at most 3 pushes, none raises (no bound).
    unsafe {
        match buf.first() {
            Some(b'+') if flat => {
                push_one_field(l, UP_OK, body);
                return false;
            }
            Some(b'-') if flat => {
                push_error(l, &error_text(&buf[..buf.len() - 2]));
                return true;
            }
            _ => {}
        }
        if let Some(s) = bulk(buf) {
            ffi::lua_pushlstring(l, s.as_ptr() as *const c_char, s.len());
            return false;
        }
    }
    let pushed = reply_to_lua(lua, buf).and_then(|(v, is_error)| {
        lua.exec_raw_lua(|raw| {
            // Scripts run on the main state (no coroutines in the
            // sandbox), which is mlua's current one: checked, as the value
            // must land in this frame.
            if raw.state() != l {
                return Err(mlua::Error::StackError);
            }
            // SAFETY: `l`'s frame has room (see the contract); one push.
            unsafe { raw.push_value(&v) }
        })?;
        Ok(is_error)
    });
    pushed.unwrap_or_else(|e| {
        let text = format!("ERR {}", super::errors::root_message(&e));
        // SAFETY: as this function's contract.
        unsafe { push_error(l, text.as_bytes()) };
        true
    })
}

/// The payload of a bulk reply `$<n>\r\n<n bytes>\r\n` that is all of `buf`.
fn bulk(buf: &[u8]) -> Option<&[u8]> {
    let rest = buf.strip_prefix(b"$")?;
    let end = rest.iter().position(|&c| c == b'\r')?;
    let n = usize::try_from(num::parse_i64(&rest[..end])?).ok()?;
    let payload = rest.get(end + 2..end + 2 + n)?;
    (rest.len() == end + 2 + n + 2 && rest.ends_with(b"\r\n")).then_some(payload)
}

/// Pushes `{err = msg}`.
///
/// # Safety
/// As `push_reply`.
unsafe fn push_error(l: *mut ffi::lua_State, msg: &[u8]) {
    // SAFETY: as this function's contract.
    unsafe { push_one_field(l, UP_ERR, msg) }
}

/// Pushes `{key = value}`, the key the closure's upvalue `key` (`UP_OK`,
/// `UP_ERR`), the table made with room for its field.
///
/// # Safety
/// As `push_reply`, in a C frame of a closure made by `functions`.
unsafe fn push_one_field(l: *mut ffi::lua_State, key: c_int, value: &[u8]) {
    // SAFETY: 3 pushes, 2 popped by `lua_rawset`; none raises (no bound).
    unsafe {
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(key));
        if value == b"OK" {
            ffi::lua_pushvalue(l, ffi::lua_upvalueindex(UP_OK_TEXT));
        } else {
            ffi::lua_pushlstring(l, value.as_ptr() as *const c_char, value.len());
        }
        ffi::lua_rawset(l, -3);
    }
}

/// A number argument as Redis 7 sends it to the command: "%.17g" (not Lua's
/// own "%.14g": 0.1 is 0.10000000000000001, 2^53 is 9007199254740992, as
/// redis-server answers): the text's length in `out`.
fn number_text(n: f64, out: &mut [u8; 40]) -> usize {
    // SAFETY: snprintf writes at most `out.len()` bytes (NUL included)
    // into `out`; the format takes exactly one double, given.
    let written = unsafe {
        libc::snprintf(
            out.as_mut_ptr() as *mut c_char,
            out.len(),
            c"%.17g".as_ptr(),
            n,
        )
    };
    (written.max(0) as usize).min(out.len() - 1)
}
