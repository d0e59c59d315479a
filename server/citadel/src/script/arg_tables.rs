//! EVAL's `KEYS` and `ARGV` globals: two tables kept across runs and
//! refilled, not two new tables per run.
//!
//! The refill is one call of a permanent C function (`fill_tables`) through
//! a bare `lua_pcall`: mlua's own protected call (`exec_raw`) made a
//! closure, a multi-value vector and two more protected global writes per
//! run, ~5k instructions, a fifth of an EVALSHA. A script may have changed
//! its tables (added a field, set a metatable): the refill then finds a key
//! past the last item, or a metatable, and that table is replaced by a new
//! one, so no script ever sees what an earlier one left.

use std::ffi::{c_char, c_int, c_void};

use mlua::{ffi, Function, Lua, Table, Value};

pub struct ArgTables {
    keys: Table,
    argv: Table,
    /// The permanent `fill_tables`.
    fill: Function,
    /// How many items each table was last filled with.
    filled: (usize, usize),
}

/// What one refill is given (through a light userdata) and reports.
struct Job<'a> {
    items: [&'a [&'a [u8]]; 2],
    filled: [c_int; 2],
    /// Bit k: table k was replaced by a new one (returned as result k+1).
    replaced: c_int,
}

impl ArgTables {
    pub fn new(lua: &Lua) -> mlua::Result<ArgTables> {
        Ok(ArgTables {
            keys: lua.create_table()?,
            argv: lua.create_table()?,
            fill: fill_function(lua)?,
            filled: (0, 0),
        })
    }

    /// Sets the globals `KEYS` and `ARGV` to tables of `keys` and `args`.
    /// Call it without a memory bound (see `sandbox::bound_memory`).
    pub fn set_globals(&mut self, lua: &Lua, keys: &[&[u8]], args: &[&[u8]]) -> mlua::Result<()> {
        let too_many = || mlua::Error::RuntimeError("ERR too many arguments for a script".into());
        let count = |n: usize| c_int::try_from(n).map_err(|_| too_many());
        let mut job = Job {
            items: [keys, args],
            filled: [count(self.filled.0)?, count(self.filled.1)?],
            replaced: 0,
        };
        count(keys.len())?;
        count(args.len())?;
        let job_ptr: *mut Job<'_> = &mut job;
        let (keys_t, argv_t, fill) = (&self.keys, &self.argv, &self.fill);
        // SAFETY: the stack is restored to `top` on every path. The four
        // pushes fit: `lua_checkstack` makes room first (without a memory
        // bound an allocation failure aborts, it raises no Lua error, as
        // mlua assumes for its own unprotected pushes). `lua_pcall` runs
        // `fill_tables` protected, with `job_ptr` live for the whole call;
        // `pop_value` takes the results it left on the stack.
        let result = lua.exec_raw_lua(|raw| unsafe {
            let state = raw.state();
            let top = ffi::lua_gettop(state);
            if ffi::lua_checkstack(state, 4) == 0 {
                return Err(mlua::Error::StackError);
            }
            let pushed = raw
                .push(fill)
                .and_then(|()| raw.push(keys_t))
                .and_then(|()| raw.push(argv_t));
            if let Err(e) = pushed {
                ffi::lua_settop(state, top);
                return Err(e);
            }
            ffi::lua_pushlightuserdata(state, job_ptr as *mut c_void);
            if ffi::lua_pcall(state, 3, 2, 0) != 0 {
                let mut len = 0;
                let msg = ffi::lua_tolstring(state, -1, &mut len);
                let text = if msg.is_null() {
                    "ERR could not set KEYS and ARGV".to_string()
                } else {
                    String::from_utf8_lossy(std::slice::from_raw_parts(msg as *const u8, len))
                        .into_owned()
                };
                ffi::lua_settop(state, top);
                return Err(mlua::Error::RuntimeError(text));
            }
            // A table is taken back (a reference made) only when it was
            // replaced: the usual refill returns nothing to keep.
            // SAFETY: `job_ptr` is live; `fill_tables` has returned.
            let replaced = (*job_ptr).replaced;
            let argv = if replaced & 2 != 0 {
                raw.pop_value()
            } else {
                Value::Nil
            };
            ffi::lua_settop(state, top + 1);
            let keys = if replaced & 1 != 0 {
                raw.pop_value()
            } else {
                Value::Nil
            };
            ffi::lua_settop(state, top);
            Ok((keys, argv))
        });
        let (keys_v, argv_v) = result?;
        self.filled = (keys.len(), args.len());
        for (bit, t, v) in [(1, &mut self.keys, keys_v), (2, &mut self.argv, argv_v)] {
            if job.replaced & bit != 0 {
                if let Value::Table(new) = v {
                    *t = new;
                }
            }
        }
        Ok(())
    }

    /// Drops the tables (and the strings they hold) for new empty ones:
    /// one huge argument must not stay pinned until the next run.
    pub fn release(&mut self, lua: &Lua) -> mlua::Result<()> {
        self.keys = lua.create_table()?;
        self.argv = lua.create_table()?;
        self.filled = (0, 0);
        Ok(())
    }
}

/// The permanent `fill_tables` closure, the names `KEYS` and `ARGV` its
/// upvalues (interned once, not per run).
fn fill_function(lua: &Lua) -> mlua::Result<Function> {
    // SAFETY: three pushes after making room (the closure takes two), the
    // closure popped into a reference; no Lua error is raised without a
    // memory bound (an allocation failure aborts, as mlua assumes for its
    // own pushes). `fill_tables` follows Lua's calling convention.
    lua.exec_raw_lua(|raw| unsafe {
        let l = raw.state();
        if ffi::lua_checkstack(l, 3) == 0 {
            return Err(mlua::Error::StackError);
        }
        for name in [b"KEYS", b"ARGV"] {
            ffi::lua_pushlstring(l, name.as_ptr() as *const c_char, name.len());
        }
        ffi::lua_pushcclosure(l, fill_tables, 2);
        match raw.pop_value() {
            Value::Function(f) => Ok(f),
            _ => Err(mlua::Error::StackError),
        }
    })
}

/// `fill_tables(keys, argv, job)`: for each table k, sets `t[1..=n]` to
/// `job.items[k]` and clears `t[n+1..=job.filled[k]]`; a table that then
/// holds anything else or has a metatable is replaced by a new one filled
/// the same way (bit k of `job.replaced`). Sets the globals `KEYS` and
/// `ARGV` to the tables and returns them.
///
/// # Safety
/// Called only by `set_globals`'s `lua_pcall`, with two tables and a light
/// userdata pointing to a live `Job`. A Lua error raised inside (none is
/// expected without a memory bound) unwinds by longjmp to that
/// `lua_pcall`: this frame and `refill`'s hold only references and
/// integers, nothing with a destructor, so skipping them is sound. At most
/// 4 values are pushed above the 3 arguments (a C function gets
/// LUA_MINSTACK, 20, free slots).
unsafe extern "C-unwind" fn fill_tables(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: argument 3 is the `Job` pointer (see the function's contract).
    let job = unsafe { &mut *(ffi::lua_touserdata(state, 3) as *mut Job<'_>) };
    for k in 0..2 {
        let at = k as c_int + 1;
        let items = job.items[k];
        // SAFETY: indices 1..=3 hold the arguments; every push
        // is followed by a pop or a store within the slots said above.
        unsafe {
            if !refill(state, at, items, job.filled[k]) {
                ffi::lua_createtable(state, items.len() as c_int, 0);
                ffi::lua_replace(state, at);
                refill(state, at, items, 0);
                job.replaced |= 1 << k;
            }
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(at));
            ffi::lua_pushvalue(state, at);
            ffi::lua_rawset(state, ffi::LUA_GLOBALSINDEX);
        }
    }
    // SAFETY: drops the light userdata; the two tables are the results.
    unsafe { ffi::lua_settop(state, 2) };
    2
}

/// Sets table `at`'s items `1..=n` to `items` and clears `n+1..=filled`;
/// false when the table then holds anything else (whatever follows key n
/// in traversal order, or key 1 when n is 0, is something a script added)
/// or has a metatable: it must not be reused.
///
/// # Safety
/// Called from `fill_tables` with its 3 arguments the whole stack; `at`
/// (1 or 2) holds a table; uses 3 slots.
unsafe fn refill(state: *mut ffi::lua_State, at: c_int, items: &[&[u8]], filled: c_int) -> bool {
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
        // Back to the three arguments (the caller's stack, see above).
        ffi::lua_settop(state, 3);
        !(extra || meta)
    }
}
