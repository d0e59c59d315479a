//! One run of a script or a library's code: a bare `lua_pcall` with the
//! error handler (`errors::error_handler`) as its message handler, the
//! result read straight off the stack.
//!
//! mlua's `Function::call` around a Lua `xpcall` wrapper cost ~2k
//! instructions a run (argument references, a second protected call, the
//! results converted to a tuple), a tenth of an EVALSHA. A string result
//! (the common reply) is written as a bulk reply from the stack, with no
//! reference made for it; other results become a `Value` for `convert`.

use std::ffi::c_int;

use citadel_resp::Reply;
use mlua::{ffi, Function, Lua, Table, Value};

/// How a run ended.
pub enum Outcome {
    /// It returned a string, written to the reply given.
    Written,
    /// It returned this value (a string only when no reply was given).
    Returned(Value),
    /// It raised this error: the handler's `{err=..., source=..., line=...}`
    /// table, or what Lua gives without running it (a memory error).
    Raised(Value),
}

/// Calls `func(params...)` protected, `handler` handling its errors; a
/// string result goes to `out` when given. Raises no Lua error itself.
pub fn call(
    lua: &Lua,
    handler: &Function,
    func: &Function,
    params: &[&Table],
    out: Option<&mut Reply<'_>>,
) -> mlua::Result<Outcome> {
    let nargs = c_int::try_from(params.len()).map_err(|_| mlua::Error::StackError)?;
    // SAFETY: the stack is restored to `top` on every path. The pushes fit:
    // `lua_checkstack` makes room first, and pushing a reference allocates
    // nothing. `lua_pcall` catches every Lua error of the run (the handler
    // at `top + 1` runs on the erroring stack first); its one result is
    // then on top, read before `lua_settop` drops it (the string's bytes
    // are valid while it is on the stack). mlua is re-entered only by the
    // callbacks the script calls, which its lock allows (reentrant).
    lua.exec_raw_lua(|raw| unsafe {
        let l = raw.state();
        let top = ffi::lua_gettop(l);
        if ffi::lua_checkstack(l, nargs + 2) == 0 {
            return Err(mlua::Error::StackError);
        }
        let pushed = raw
            .push(handler)
            .and_then(|()| raw.push(func))
            .and_then(|()| params.iter().try_for_each(|t| raw.push(*t)));
        if let Err(e) = pushed {
            ffi::lua_settop(l, top);
            return Err(e);
        }
        let status = ffi::lua_pcall(l, nargs, 1, top + 1);
        let outcome = match out {
            _ if status != 0 => Outcome::Raised(raw.pop_value()),
            Some(out) if ffi::lua_type(l, -1) == ffi::LUA_TSTRING => {
                let mut len = 0;
                let bytes = ffi::lua_tolstring(l, -1, &mut len);
                out.bulk(std::slice::from_raw_parts(bytes as *const u8, len));
                Outcome::Written
            }
            _ => Outcome::Returned(raw.pop_value()),
        };
        ffi::lua_settop(l, top);
        Ok(outcome)
    })
}
