//! Script errors as Redis reports them: the handler that turns any Lua
//! error into `{err=..., source=..., line=...}` at the point it happened,
//! and the final error line
//! `<err> script: <name>, on <source>:<line>.`

use citadel_resp::Reply;
use mlua::{Function, Lua, Value};

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
