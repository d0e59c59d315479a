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

use mlua::{ffi, Lua, Table, Variadic};

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
        let filled = self.filled;
        let dirty = fill(
            lua,
            [(&self.keys, keys, filled.0), (&self.argv, args, filled.1)],
        )?;
        self.filled = (keys.len(), args.len());
        for (bit, t, items) in [(1, &mut self.keys, keys), (2, &mut self.argv, args)] {
            if dirty & bit != 0 {
                *t = lua.create_table_with_capacity(items.len(), 0)?;
                fill(lua, [(t, items, 0)])?;
            }
        }
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

/// For each `(t, items, filled)`: sets `t[1..=n]` to `items` and clears
/// `t[n+1..=filled]`, all in one protected call. Returns a bit per table
/// (1 << its position) that holds anything else or has a metatable: it
/// must not be reused.
fn fill<const N: usize>(lua: &Lua, tables: [(&Table, &[&[u8]], usize); N]) -> mlua::Result<u32> {
    let too_many = || mlua::Error::RuntimeError("ERR too many arguments for a script".into());
    let mut counts = [(0, 0); N];
    for (count, (_, items, filled)) in counts.iter_mut().zip(&tables) {
        *count = (
            c_int::try_from(items.len()).map_err(|_| too_many())?,
            c_int::try_from(*filled).map_err(|_| too_many())?,
        );
    }
    // Each table its own argument (an array would become one table).
    let pushed: Variadic<&Table> = tables.iter().map(|(t, _, _)| *t).collect();
    // SAFETY: `exec_raw` runs the closure inside a protected call (a C
    // function's frame: LUA_MINSTACK, 20 free slots) with the N (at most
    // 2) tables at stack indices 1..=N; at most 4 values are pushed above
    // them at once. A Lua error (out of memory) unwinds to that protected
    // call; the closure owns nothing that needs dropping. The pointers
    // passed to `lua_pushlstring` are live slices of `items`.
    unsafe {
        lua.exec_raw::<u32>(pushed, |state| {
            let mut dirty = 0;
            for (k, ((_, items, _), &(n, filled))) in tables.iter().zip(&counts).enumerate() {
                let at = k as c_int + 1;
                for (i, s) in items.iter().enumerate() {
                    ffi::lua_pushlstring(state, s.as_ptr() as *const c_char, s.len());
                    ffi::lua_rawseti_(state, at, i as c_int + 1);
                }
                for i in n + 1..=filled {
                    ffi::lua_pushnil(state);
                    ffi::lua_rawseti_(state, at, i);
                }
                // Whatever follows key n in traversal order (or key 1
                // when n is 0) is something a script added.
                if n == 0 {
                    ffi::lua_pushnil(state);
                } else {
                    ffi::lua_pushinteger(state, n as ffi::lua_Integer);
                }
                let extra = ffi::lua_next(state, at) != 0;
                let meta = ffi::lua_getmetatable(state, at) != 0;
                ffi::lua_settop(state, N as c_int);
                if extra || meta {
                    dirty |= 1 << k;
                }
            }
            ffi::lua_settop(state, 0);
            ffi::lua_pushinteger(state, dirty);
        })
    }
}
