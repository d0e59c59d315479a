//! EVAL's `KEYS` and `ARGV` globals: two tables kept across runs and
//! refilled, not two new tables per run.
//!
//! Building them through mlua's safe API cost a reference slot per string
//! and two tables of garbage per run; here each table is filled in one
//! protected call on the raw Lua stack. A script may have changed its
//! tables (added a field, set a metatable): the refill then finds a key
//! past the last item, or a metatable, and that table is replaced by a new
//! one, so no script ever sees what an earlier one left.

use std::ffi::{c_char, c_int};

use mlua::{ffi, Lua, Table};

pub struct ArgTables {
    keys: Table,
    argv: Table,
    /// How many items each table was last filled with.
    filled: (usize, usize),
}

impl ArgTables {
    pub fn new(lua: &Lua) -> mlua::Result<ArgTables> {
        Ok(ArgTables {
            keys: lua.create_table()?,
            argv: lua.create_table()?,
            filled: (0, 0),
        })
    }

    /// Sets the globals `KEYS` and `ARGV` to tables of `keys` and `args`.
    pub fn set_globals(&mut self, lua: &Lua, keys: &[&[u8]], args: &[&[u8]]) -> mlua::Result<()> {
        refill(lua, &mut self.keys, keys, self.filled.0)?;
        self.filled.0 = keys.len();
        refill(lua, &mut self.argv, args, self.filled.1)?;
        self.filled.1 = args.len();
        let g = lua.globals();
        g.raw_set("KEYS", &self.keys)?;
        g.raw_set("ARGV", &self.argv)
    }

    /// Drops the tables (and the strings they hold) for new empty ones:
    /// one huge argument must not stay pinned until the next run.
    pub fn release(&mut self, lua: &Lua) -> mlua::Result<()> {
        *self = ArgTables::new(lua)?;
        Ok(())
    }
}

/// Fills `t` with `items`, or a new table if `t` was changed by a script.
fn refill(lua: &Lua, t: &mut Table, items: &[&[u8]], filled: usize) -> mlua::Result<()> {
    if !fill(lua, t, items, filled)? {
        *t = lua.create_table_with_capacity(items.len(), 0)?;
        fill(lua, t, items, 0)?;
    }
    Ok(())
}

/// Sets `t[1..=n]` to `items` and clears `t[n+1..=filled]`; false when the
/// table holds anything else (or has a metatable): it must not be reused.
fn fill(lua: &Lua, t: &Table, items: &[&[u8]], filled: usize) -> mlua::Result<bool> {
    let too_many = || mlua::Error::RuntimeError("ERR too many arguments for a script".into());
    let n = c_int::try_from(items.len()).map_err(|_| too_many())?;
    let filled = c_int::try_from(filled).map_err(|_| too_many())?;
    // SAFETY: `exec_raw` runs the closure inside a protected call (a C
    // function's frame: LUA_MINSTACK, 20 free slots) with `t` at stack
    // index 1; at most 4 values are pushed above it at once. A
    // Lua error (out of memory) unwinds to that protected call; the
    // closure owns nothing that needs dropping. The pointers passed to
    // `lua_pushlstring` are live slices of `items`.
    unsafe {
        lua.exec_raw::<bool>(t, |state| {
            for (i, s) in items.iter().enumerate() {
                ffi::lua_pushlstring(state, s.as_ptr() as *const c_char, s.len());
                ffi::lua_rawseti_(state, 1, i as c_int + 1);
            }
            for i in n + 1..=filled {
                ffi::lua_pushnil(state);
                ffi::lua_rawseti_(state, 1, i);
            }
            // Whatever follows key n in traversal order (or key 1 when
            // n is 0) is something a script added.
            if n == 0 {
                ffi::lua_pushnil(state);
            } else {
                ffi::lua_pushinteger(state, n as ffi::lua_Integer);
            }
            let extra = ffi::lua_next(state, 1) != 0;
            let meta = ffi::lua_getmetatable(state, 1) != 0;
            ffi::lua_settop(state, 0);
            ffi::lua_pushboolean(state, c_int::from(!extra && !meta));
        })
    }
}
