//! The hot path of `redis.call` / `redis.pcall`: two Rust functions made
//! once per state (not per run), which reach the running script's [`Host`]
//! through `run_host::RunHost`, a cell the engine fills for the length of one run.
//!
//! Making the callbacks per run (an mlua scope) cost a userdata, a boxed
//! closure and four table writes per script call, and its teardown as much
//! again; one pointer set and cleared per run costs nothing measurable.

use std::cell::Cell;
use std::ffi::{c_char, c_int};
use std::sync::Arc;

use mlua::state::RawLua;
use mlua::{ffi, FromLuaMulti, Function, Lua, MultiValue, Value};

use super::api::{self, CallScratch};
use super::busy::Slot;
use super::convert::{error_table, reply_to_lua};
use super::sandbox;
use super::{CallArgs, CallRules, Host};

const LOADING: &[u8] = b"ERR redis.call is not available while loading a library";
const BAD_ARG: &[u8] = b"ERR Lua redis lib command arguments must be strings or integers";

thread_local! {
    /// `redis.call`'s buffers, kept between calls (taken while in use;
    /// calls never nest, and a nested one would only start empty).
    static SCRATCH: Cell<CallScratch> = Cell::default();
}

/// The permanent `redis.call` and `redis.pcall`.
pub fn functions(
    lua: &Lua,
    shared: std::rc::Rc<api::Shared>,
    slot: Arc<Slot>,
) -> mlua::Result<(Function, Function)> {
    let (s, sl) = (shared.clone(), slot.clone());
    let call = lua.create_function(move |lua, args: Packed| {
        let (v, failed) = raw_call(lua, args, &s, &sl)?;
        api::raise_failed(v, failed)
    })?;
    let pcall =
        lua.create_function(move |lua, args: Packed| Ok(raw_call(lua, args, &shared, &slot)?.0))?;
    Ok((call, pcall))
}

/// A call's arguments, packed as the command layer's arguments are into
/// the thread's scratch buffers: read straight off the Lua stack, so a
/// call makes no `Value` per argument and no argument list.
struct Packed {
    scratch: CallScratch,
    /// An argument was neither a string nor a number (packing stopped).
    bad: bool,
}

impl Packed {
    fn start() -> Packed {
        Packed {
            scratch: SCRATCH.take(),
            bad: false,
        }
    }

    fn push(&mut self, arg: &[u8]) {
        let start = self.scratch.args.len();
        self.scratch.args.extend_from_slice(arg);
        self.scratch.spans.push(start..self.scratch.args.len());
    }

    fn push_number(&mut self, n: f64) {
        let mut text = [0u8; 40];
        let len = number_text(n, &mut text);
        self.push(&text[..len]);
    }
}

impl FromLuaMulti for Packed {
    fn from_lua_multi(values: MultiValue, _: &Lua) -> mlua::Result<Packed> {
        let mut packed = Packed::start();
        for v in values.iter() {
            match v {
                Value::String(s) => packed.push(&s.as_bytes()),
                Value::Integer(i) => packed.push_number(*i as f64),
                Value::Number(n) => packed.push_number(*n),
                _ => {
                    packed.bad = true;
                    break;
                }
            }
        }
        Ok(packed)
    }

    /// # Safety
    /// mlua calls it with its callback's argument count, the arguments on
    /// top of `lua`'s current stack.
    unsafe fn from_stack_args(
        nargs: c_int,
        _: usize,
        _: Option<&str>,
        lua: &RawLua,
    ) -> mlua::Result<Packed> {
        let state = lua.state();
        let mut packed = Packed::start();
        for k in 0..nargs {
            // The callback's `nargs` arguments are the top `nargs` stack
            // slots (as mlua's own conversions read them).
            let idx = k - nargs;
            // SAFETY: `idx` is a valid stack index (above); reading a
            // type raises no Lua error.
            let kind = unsafe { ffi::lua_type(state, idx) };
            if kind == ffi::LUA_TSTRING {
                let mut len = 0;
                // SAFETY: `idx` holds a string: `lua_tolstring` returns its
                // own bytes (no conversion, no allocation, no Lua error),
                // valid while it stays on the stack, past this copy.
                unsafe {
                    let ptr = ffi::lua_tolstring(state, idx, &mut len);
                    packed.push(std::slice::from_raw_parts(ptr as *const u8, len));
                }
            } else if kind == ffi::LUA_TNUMBER {
                // SAFETY: `idx` holds a number; reading it raises no error.
                packed.push_number(unsafe { ffi::lua_tonumber(state, idx) });
            } else {
                packed.bad = true;
                break;
            }
        }
        Ok(packed)
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

/// `redis.call` / `redis.pcall`'s common part: (reply as a Lua value, is
/// an error). The scratch buffers go back to the thread for the next call,
/// so a call allocates nothing in Rust.
fn raw_call(
    lua: &Lua,
    args: Packed,
    shared: &api::Shared,
    slot: &Slot,
) -> mlua::Result<(Value, bool)> {
    let Packed { mut scratch, bad } = args;
    let result = checked_call(lua, &mut scratch, bad, shared, slot);
    scratch.keep_if_small();
    SCRATCH.set(scratch);
    result
}

fn checked_call(
    lua: &Lua,
    scratch: &mut CallScratch,
    bad: bool,
    shared: &api::Shared,
    slot: &Slot,
) -> mlua::Result<(Value, bool)> {
    let refusal = if !shared.run_host.is_running() {
        Some(LOADING)
    } else if scratch.spans.is_empty() && !bad {
        Some(&b"ERR Please specify at least one argument for this redis lib call"[..])
    } else if bad {
        Some(BAD_ARG)
    } else {
        None
    };
    if let Some(text) = refusal {
        return Ok((Value::Table(error_table(lua, text)?), true));
    }
    sandbox::bound_memory(lua, false)?;
    let result = shared.run_host.with(|host, read_only| {
        let rules = CallRules {
            read_only,
            resp3: shared.resp3.get(),
        };
        call_host(lua, &rules, host, slot, scratch)
    });
    sandbox::bound_memory(lua, true)?;
    result.unwrap_or_else(|| Ok((Value::Table(error_table(lua, LOADING)?), true)))
}

fn call_host(
    lua: &Lua,
    rules: &CallRules,
    host: &mut dyn Host,
    slot: &Slot,
    scratch: &mut CallScratch,
) -> mlua::Result<(Value, bool)> {
    let argv = CallArgs {
        buf: &scratch.args,
        spans: &scratch.spans,
    };
    if host.call(argv, rules, &mut scratch.reply) {
        slot.mark_written();
    }
    reply_to_lua(lua, &scratch.reply)
}
