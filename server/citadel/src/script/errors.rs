//! Script errors as Redis reports them: the handler that turns any Lua
//! error into `{err=..., source=..., line=...}` at the point it happened,
//! and the final error line
//! `<err> script: <name>, on <source>:<line>.`; and Redis 7.0's global
//! `pcall`, which hands a caught `{err=...}` table over as its string.

use std::ffi::c_int;

use citadel_resp::Reply;
use mlua::{ffi, Function, Lua, Value};

use super::convert::error_table;

/// The text of a Lua error value (a string, or an error raised in Rust).
pub(super) fn error_value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Error(e) => root_message(e),
        Value::Nil => "nil".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.type_name().to_string(),
    }
}

pub(super) fn root_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => root_message(cause),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::MemoryError(m) => m.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::BadArgument { cause, .. } => root_message(cause),
        mlua::Error::FromLuaConversionError { .. } => {
            format!("bad argument: {e}")
        }
        other => other.to_string(),
    }
}

/// The error handler run at the point of a script error: makes the error
/// a `{err=..., source=..., line=...}` table, the position being the
/// innermost user Lua frame (as Redis's `__redis__err__handler`).
pub(super) fn error_handler(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, err: Value| {
        let t = match &err {
            // `redis.call` raises its `{err=...}` table (`call.rs`).
            Value::Table(t) => t.clone(),
            other => {
                let msg = format!("ERR {}", error_value_text(other));
                error_table(lua, msg.as_bytes())?
            }
        };
        for level in 1..64 {
            let Some((what, source, line)) = lua.inspect_stack(level, |d| {
                let s = d.source();
                (s.what, s.source.map(|c| c.into_owned()), d.current_line())
            }) else {
                break;
            };
            let internal = source.as_deref().is_none_or(|s| s.starts_with('='));
            if what == "C" || internal {
                continue;
            }
            if let (Some(source), Some(line)) = (source, line) {
                t.raw_set("source", source)?;
                t.raw_set("line", line)?;
            }
            break;
        }
        Ok(t)
    })
}

pub(super) fn inv_error(out: &mut Reply<'_>, name: &str, e: &mlua::Error) {
    out.error(format!("ERR Error running script {name}, {}", root_message(e)).as_bytes());
}

/// `<err> script: <name>, on <source>:<line>.` from the handler's table.
pub(super) fn failure_line(v: &Value, name: &str) -> Vec<u8> {
    let Value::Table(t) = v else {
        return format!("ERR Error running script {name}, {}", error_value_text(v)).into_bytes();
    };
    let mut line = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => s.as_bytes().to_vec(),
        _ => b"ERR unknown error".to_vec(),
    };
    let source: Option<String> = t.raw_get("source").ok().flatten();
    let at: Option<i64> = t.raw_get("line").ok().flatten();
    if let (Some(source), Some(at)) = (source, at) {
        line.extend_from_slice(format!(" script: {name}, on {source}:{at}.").as_bytes());
    }
    line
}

/// Replaces the global `pcall` with Redis 7.0's (`luaRedisPcall`): a
/// caught error that is a table with a string (or number) `err` field is
/// returned as that field, so `pcall(redis.call, ...)` gives the script
/// the error's text, not the `{err=...}` table `redis.call` raised (which
/// an uncaught error keeps, for its position in the final error line).
pub(super) fn install_pcall(lua: &Lua) -> mlua::Result<()> {
    // SAFETY: a C function that follows the Lua C API's stack rules; made
    // with a plain push that raises nothing.
    let f = unsafe { lua.create_c_function(redis_pcall) }?;
    lua.globals().raw_set("pcall", f)
}

/// `pcall(f, ...)` as Redis 7.0's `luaRedisPcall`, quirk included: with
/// no argument it calls its own `true` placeholder and returns `false,
/// "attempt to call a boolean value"` (plain Lua raises instead).
unsafe extern "C-unwind" fn redis_pcall(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a C function; the arguments are 1..=argc of
    // this frame, which has LUA_MINSTACK free slots: the placeholder and
    // the `err` field are the most it holds beyond them (after an error,
    // the function and its arguments are gone). `lua_getfield` may raise
    // (a metamethod), which Lua handles by longjmp: this frame holds
    // nothing with a destructor.
    unsafe {
        let argc = ffi::lua_gettop(l);
        ffi::lua_pushboolean(l, 1);
        ffi::lua_insert(l, 1);
        if ffi::lua_pcall(l, (argc - 1).max(0), ffi::LUA_MULTRET, 0) != 0 {
            if argc > 0 {
                ffi::lua_remove(l, 1);
            }
            if ffi::lua_istable(l, -1) != 0 {
                ffi::lua_getfield(l, -1, c"err".as_ptr());
                if ffi::lua_isstring(l, -1) != 0 {
                    ffi::lua_replace(l, -2);
                } else {
                    ffi::lua_pop(l, 1);
                }
            }
            ffi::lua_pushboolean(l, 0);
            ffi::lua_insert(l, 1);
        }
        ffi::lua_gettop(l)
    }
}
