//! Script errors as Redis reports them: the handler that turns any Lua
//! error into `{err=..., source=..., line=...}` at the point it happened,
//! the error `redis.call` raises, and the final error line
//! `<err> script: <name>, on <source>:<line>.`

use citadel_resp::Reply;
use mlua::{Function, Lua, Value};

use super::convert::error_table;
use super::sandbox;

/// An error `redis.call` raises: its text is the error table's `err`.
#[derive(Debug)]
pub struct RaisedError(pub Vec<u8>);

impl std::fmt::Display for RaisedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl std::error::Error for RaisedError {}

/// The `RaisedError` inside a callback error, if that is what it is.
pub(super) fn raised(e: &mlua::Error) -> Option<&RaisedError> {
    match e {
        mlua::Error::CallbackError { cause, .. } => raised(cause),
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<RaisedError>(),
        _ => None,
    }
}

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
            Value::Table(t) => t.clone(),
            Value::Error(e) if raised(e).is_some() => {
                error_table(lua, &raised(e).map(|r| r.0.clone()).unwrap_or_default())?
            }
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

/// Lua's `pcall` hands a script `redis.call`'s error as Redis does: the
/// `{err=...}` table, not the Rust error value that carried it.
pub(super) fn wrap_pcall(lua: &Lua) -> mlua::Result<()> {
    let fix = lua.create_function(|lua, v: Value| match &v {
        Value::Error(e) => match raised(e) {
            Some(r) => Ok(Value::Table(error_table(lua, &r.0)?)),
            None => Ok(v),
        },
        _ => Ok(v),
    })?;
    lua.load(
        r#"
        local pcall, fix, select = pcall, ...
        local function fixed(ok, ...)
            if ok then return ok, ... end
            return ok, fix((...))
        end
        _G.pcall = function(...) return fixed(pcall(...)) end
        "#,
    )
    .set_name(sandbox::INTERNAL_CHUNK)
    .call::<()>(fix)
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
