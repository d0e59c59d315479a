//! The libraries Redis ships to scripts, in Rust: `bit` (LuaBitOp),
//! `cjson`, `cmsgpack` and `struct`.

mod bit;
mod cjson;
mod cmsgpack;
mod structlib;

use mlua::Lua;

pub fn register(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    g.set("bit", bit::table(lua)?)?;
    g.set("cjson", cjson::table(lua)?)?;
    g.set("cmsgpack", cmsgpack::table(lua)?)?;
    g.set("struct", structlib::table(lua)?)?;
    Ok(())
}

/// A library error raised in Lua with exactly `msg` (as `luaL_error` from
/// a C function gives it: no position).
pub(crate) fn err(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

/// Whether a Lua table is an array 1..n (and its n).
pub(crate) fn array_len(t: &mlua::Table) -> mlua::Result<Option<usize>> {
    let mut max = 0usize;
    let mut count = 0usize;
    for pair in t.pairs::<mlua::Value, mlua::Value>() {
        let (k, _) = pair?;
        let idx = match k {
            mlua::Value::Integer(i) if i >= 1 => i as usize,
            mlua::Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => n as usize,
            _ => return Ok(None),
        };
        max = max.max(idx);
        count += 1;
    }
    Ok(if count == max { Some(max) } else { None })
}

#[cfg(test)]
pub(crate) fn test_lua() -> Lua {
    let lua = Lua::new();
    register(&lua).unwrap();
    lua
}
