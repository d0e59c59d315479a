//! The hot path of `redis.call` / `redis.pcall`: two Rust functions made
//! once per state (not per run), which reach the running script's [`Host`]
//! through `run_host::RunHost`, a cell the engine fills for the length of one run.
//!
//! Making the callbacks per run (an mlua scope) cost a userdata, a boxed
//! closure and four table writes per script call, and its teardown as much
//! again; one pointer set and cleared per run costs nothing measurable.

use std::sync::Arc;

use mlua::{Function, Lua, MultiValue, Value};

use super::api::{self, CallScratch};
use super::busy::Slot;
use super::convert::{error_table, reply_to_lua};
use super::sandbox;
use super::{CallArgs, CallRules, Host};

const LOADING: &[u8] = b"ERR redis.call is not available while loading a library";

/// The permanent `redis.call` and `redis.pcall`.
pub fn functions(
    lua: &Lua,
    shared: std::rc::Rc<api::Shared>,
    slot: Arc<Slot>,
) -> mlua::Result<(Function, Function)> {
    let (s, sl) = (shared.clone(), slot.clone());
    let call = lua.create_function(move |lua, args: MultiValue| {
        let (v, failed) = raw_call(lua, &args, &s, &sl)?;
        api::raise_failed(v, failed)
    })?;
    let pcall = lua.create_function(move |lua, args: MultiValue| {
        Ok(raw_call(lua, &args, &shared, &slot)?.0)
    })?;
    Ok((call, pcall))
}

/// `redis.call` / `redis.pcall`'s common part: (reply as a Lua value, is
/// an error). The arguments are packed into the state's scratch buffers
/// (reused from call to call), so a call allocates nothing in Rust.
fn raw_call(
    lua: &Lua,
    args: &MultiValue,
    shared: &api::Shared,
    slot: &Slot,
) -> mlua::Result<(Value, bool)> {
    if !shared.run_host.is_running() {
        return Ok((Value::Table(error_table(lua, LOADING)?), true));
    }
    if args.is_empty() {
        let t = error_table(
            lua,
            b"ERR Please specify at least one argument for this redis lib call",
        )?;
        return Ok((Value::Table(t), true));
    }
    sandbox::bound_memory(lua, false)?;
    let mut scratch = shared.call_scratch.take();
    let result = shared.run_host.with(|host, read_only| {
        let rules = CallRules {
            read_only,
            resp3: shared.resp3.get(),
        };
        pack_and_call(lua, args, &rules, host, slot, &mut scratch)
    });
    scratch.keep_if_small();
    shared.call_scratch.set(scratch);
    sandbox::bound_memory(lua, true)?;
    result.unwrap_or_else(|| Ok((Value::Table(error_table(lua, LOADING)?), true)))
}

fn pack_and_call(
    lua: &Lua,
    args: &MultiValue,
    rules: &CallRules,
    host: &mut dyn Host,
    slot: &Slot,
    scratch: &mut CallScratch,
) -> mlua::Result<(Value, bool)> {
    for a in args.iter() {
        let start = scratch.args.len();
        match a {
            Value::String(s) => scratch.args.extend_from_slice(&s.as_bytes()),
            Value::Integer(_) | Value::Number(_) => {
                if let Some(s) = lua.coerce_string(a.clone())? {
                    scratch.args.extend_from_slice(&s.as_bytes());
                }
            }
            _ => {
                let t = error_table(
                    lua,
                    b"ERR Lua redis lib command arguments must be strings or integers",
                )?;
                return Ok((Value::Table(t), true));
            }
        }
        scratch.spans.push(start..scratch.args.len());
    }
    let argv = CallArgs {
        buf: &scratch.args,
        spans: &scratch.spans,
    };
    if host.call(argv, rules, &mut scratch.reply) {
        slot.mark_written();
    }
    reply_to_lua(lua, &scratch.reply)
}
