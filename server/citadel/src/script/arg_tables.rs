//! EVAL's `KEYS` and `ARGV` globals: two tables kept across runs and
//! refilled, not two new tables per run.
//!
//! The refill is straight raw pushes on the state's stack, with no
//! protected call around them: without a memory bound none of them raises
//! a Lua error (an allocation failure aborts, as mlua assumes for its own
//! unprotected pushes; the sandbox makes no userdata whose finalizer could
//! raise), as in `redis.call` (`call.rs`). mlua's own protected call
//! (`exec_raw`) cost ~5k instructions a run, a bare `lua_pcall` of a C
//! function ~0.7k. A script may have changed its tables (added a field,
//! set a metatable): the refill then finds a key past the last item, or a
//! metatable, and that table is replaced by a new one, so no script ever
//! sees what an earlier one left.

use std::ffi::{c_char, c_int};

use mlua::{ffi, Lua};

use super::CallArgs;

pub struct ArgTables {
    /// The registry slots (`luaL_ref`) of `KEYS`'s and `ARGV`'s tables:
    /// pushed by one raw index, not through an mlua reference.
    tables: [c_int; 2],
    /// The registry slots of their global names, interned once.
    names: [c_int; 2],
    /// How many items each table was last filled with.
    filled: [usize; 2],
}

const REGISTRY: c_int = ffi::LUA_REGISTRYINDEX;

impl ArgTables {
    pub fn new(lua: &Lua) -> mlua::Result<ArgTables> {
        // SAFETY: two pushes at a time after `lua_checkstack`, each popped
        // into the registry by `luaL_ref`; without a memory bound nothing
        // here raises a Lua error (see the module comment).
        lua.exec_raw_lua(|raw| unsafe {
            let l = raw.state();
            if ffi::lua_checkstack(l, 2) == 0 {
                return Err(mlua::Error::StackError);
            }
            let slot = |name: &str| {
                ffi::lua_createtable(l, 0, 0);
                let table = ffi::luaL_ref(l, REGISTRY);
                ffi::lua_pushlstring(l, name.as_ptr() as *const c_char, name.len());
                (table, ffi::luaL_ref(l, REGISTRY))
            };
            let (keys, argv) = (slot("KEYS"), slot("ARGV"));
            Ok(ArgTables {
                tables: [keys.0, argv.0],
                names: [keys.1, argv.1],
                filled: [0, 0],
            })
        })
    }

    /// Sets the globals `KEYS` and `ARGV` to tables of `keys` and `args`.
    /// Call it without a memory bound (see `sandbox::bound_memory`).
    pub fn set_globals(
        &mut self,
        lua: &Lua,
        keys: CallArgs<'_>,
        args: CallArgs<'_>,
    ) -> mlua::Result<()> {
        let too_many = || mlua::Error::RuntimeError("ERR too many arguments for a script".into());
        let count = |n: usize| c_int::try_from(n).map_err(|_| too_many());
        let filled = [count(self.filled[0])?, count(self.filled[1])?];
        count(keys.len())?;
        count(args.len())?;
        let items = [keys, args];
        let (tables, names) = (self.tables, self.names);
        // SAFETY: the stack is restored to `top` on every path; at most 5
        // values are pushed above it, after `lua_checkstack` made room.
        // Without a memory bound no push, `lua_rawset(i)`, `lua_next` (its
        // key was just set) or `lua_getmetatable` raises a Lua error (see
        // the module comment). A registry slot's push allocates nothing.
        lua.exec_raw_lua(|raw| unsafe {
            let l = raw.state();
            let top = ffi::lua_gettop(l);
            if ffi::lua_checkstack(l, 5) == 0 {
                return Err(mlua::Error::StackError);
            }
            for k in 0..2 {
                ffi::lua_rawgeti_(l, REGISTRY, tables[k]);
                let at = top + 1;
                if !refill(l, at, items[k], filled[k]) {
                    ffi::lua_createtable(l, items[k].len() as c_int, 0);
                    ffi::lua_replace(l, at);
                    refill(l, at, items[k], 0);
                    ffi::lua_pushvalue(l, at);
                    ffi::lua_rawseti_(l, REGISTRY, tables[k]);
                }
                ffi::lua_rawgeti_(l, REGISTRY, names[k]);
                ffi::lua_pushvalue(l, at);
                ffi::lua_rawset(l, ffi::LUA_GLOBALSINDEX);
                ffi::lua_settop(l, top);
            }
            Ok(())
        })?;
        self.filled = [keys.len(), args.len()];
        Ok(())
    }

    /// Replaces the tables (and the strings they hold) with new empty ones:
    /// one huge argument must not stay pinned until the next run.
    pub fn release(&mut self, lua: &Lua) -> mlua::Result<()> {
        let tables = self.tables;
        // SAFETY: one push at a time after `lua_checkstack`, popped into
        // its registry slot; no memory bound is set (see `new`).
        lua.exec_raw_lua(|raw| unsafe {
            let l = raw.state();
            if ffi::lua_checkstack(l, 1) == 0 {
                return Err(mlua::Error::StackError);
            }
            for slot in tables {
                ffi::lua_createtable(l, 0, 0);
                ffi::lua_rawseti_(l, REGISTRY, slot);
            }
            Ok(())
        })?;
        self.filled = [0, 0];
        Ok(())
    }
}

/// Sets table `at`'s items `1..=n` to `items` and clears `n+1..=filled`;
/// false when the table then holds anything else (whatever follows key n
/// in traversal order, or key 1 when n is 0, is something a script added)
/// or has a metatable: it must not be reused.
///
/// # Safety
/// Called from `set_globals` with the table at `at`, the top of the stack,
/// and 3 free slots above it; no memory bound is set.
unsafe fn refill(
    state: *mut ffi::lua_State,
    at: c_int,
    items: CallArgs<'_>,
    filled: c_int,
) -> bool {
    let n = items.len() as c_int;
    // SAFETY: see the function's contract.
    unsafe {
        for (i, s) in items.iter().enumerate() {
            ffi::lua_pushlstring(state, s.as_ptr() as *const c_char, s.len());
            ffi::lua_rawseti_(state, at, i as c_int + 1);
        }
        for i in n + 1..=filled {
            ffi::lua_pushnil(state);
            ffi::lua_rawseti_(state, at, i);
        }
        if n == 0 {
            ffi::lua_pushnil(state);
        } else {
            ffi::lua_pushinteger(state, n as ffi::lua_Integer);
        }
        let extra = ffi::lua_next(state, at) != 0;
        let meta = ffi::lua_getmetatable(state, at) != 0;
        // Back to the table on top (the caller's stack, see above).
        ffi::lua_settop(state, at);
        !(extra || meta)
    }
}
