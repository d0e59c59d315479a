//! Redis 7's Lua environment: the base, table, string, math and coroutine
//! libraries plus `bit`, `cjson`, `cmsgpack`, `struct` and `os.clock`;
//! no `io`, `debug`, `require`, `dofile`, `loadfile`, `print`, `setfenv`,
//! `getfenv`, `module` or `newproxy`. The globals table refuses new
//! globals ("Attempt to modify a readonly table") and reading unknown
//! ones ("Script attempted to access nonexistent global variable"), and
//! `math.random` is Redis's rand48 (seeded once per state, as Redis 7 does:
//! no longer reseeded per script; `math.randomseed` reseeds it).

use std::cell::Cell;
use std::rc::Rc;

use mlua::{Function, Lua, LuaOptions, StdLib, Table, Value, Variadic};

/// Chunk name of the environment's own Lua code: error positions skip it.
pub const INTERNAL_CHUNK: &str = "=redis";

/// Most memory one thread's Lua state may hold while a script runs.
const MEMORY_LIMIT: usize = 1 << 30;

/// Bounds the state's memory while Lua code runs (`on`), and lifts the
/// bound while Rust code runs. mlua's allocator enforces the bound on
/// every allocation, so no single one (`s = s .. s`) can get past it; but
/// while a bound is set, mlua also wraps every string and table that Rust
/// creates in a protected call, which costs more than a short script. Rust
/// creates values only before a run (KEYS, ARGV) and inside `redis.call`
/// (the reply), each bounded by the command line or the reply size.
pub fn bound_memory(lua: &Lua, on: bool) -> mlua::Result<()> {
    lua.set_memory_limit(if on { MEMORY_LIMIT } else { 0 })
        .map(drop)
}

/// Past this much memory after a run, the state is collected in full.
pub const COLLECT_ABOVE: usize = MEMORY_LIMIT / 2;

const REMOVED: &[&str] = &[
    "dofile", "loadfile", "require", "module", "setfenv", "getfenv", "newproxy", "print",
    "package", "debug", "io",
];

/// A fresh state with Redis's libraries; globals stay writable until
/// [`protect_globals`].
pub fn new_lua() -> mlua::Result<(Lua, Rc<Cell<u64>>)> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS,
        LuaOptions::new(),
    )?;
    let g = lua.globals();
    // os: only clock (as Redis 7.2).
    let os: Table = g.get("os")?;
    let clock: Value = os.get("clock")?;
    let only_clock = lua.create_table()?;
    only_clock.set("clock", clock)?;
    g.set("os", only_clock)?;
    for name in REMOVED {
        g.set(*name, Value::Nil)?;
    }
    super::libs::register(&lua)?;
    text_only_loading(&lua)?;
    let seed = Rc::new(Cell::new(0u64));
    install_random(&lua, seed.clone())?;
    Ok((lua, seed))
}

/// `loadstring` and `load` refuse precompiled (binary) chunks, which
/// could crash the VM (Redis refuses them too).
fn text_only_loading(lua: &Lua) -> mlua::Result<()> {
    lua.load(
        r#"
        local loadstring, byte, concat, type, error = loadstring, string.byte, table.concat, type, error
        local function text_only(s, name)
            if type(s) == 'string' and byte(s, 1) == 27 then
                return nil, 'binary chunks are not allowed'
            end
            return loadstring(s, name)
        end
        _G.loadstring = text_only
        _G.load = function(f, name)
            if type(f) ~= 'function' then
                error("bad argument #1 to 'load' (function expected)", 2)
            end
            local parts = {}
            while true do
                local p = f()
                if p == nil or p == '' then break end
                parts[#parts + 1] = p
            end
            return text_only(concat(parts), name)
        end
        "#,
    )
    .set_name(INTERNAL_CHUNK)
    .exec()
}

/// Makes the globals table read-only: new globals and unknown reads fail,
/// and so does changing an existing global (`redis = nil`, `_G = {}`),
/// a library's field, or a protected table's metatable, as Redis 7.0.15's
/// read-only tables refuse them (its Lua refuses `rawset` and
/// `setmetatable` on them too).
///
/// `__newindex` runs only for a key the table lacks, so `_G` itself
/// becomes an empty view of the real globals (a table `__index`, which
/// the VM follows without a call), as the library tables do. Their
/// metatables answer `getmetatable` with a read-only decoy, so no script
/// reaches the real tables (nor the string metatable's `__index`, the
/// real `string` library).
pub fn protect_globals(lua: &Lua) -> mlua::Result<LoadEnv> {
    lua.load(
        r#"
        local error, tostring, next = error, tostring, next
        local setmetatable, getmetatable, rawset = setmetatable, getmetatable, rawset
        local function readonly()
            error("Attempt to modify a readonly table", 2)
        end
        -- Tables scripts may not change by any means.
        local protected = {}
        local decoy = setmetatable({}, {__newindex = readonly, __metatable = false})
        protected[decoy] = true
        local real = {}
        for k, v in next, _G do
            real[k] = v
        end
        -- What a library's top-level code sees (Redis 7.0's library API):
        -- only `redis`, holding register_function, log and its levels and
        -- the version; register_function is gone from the run-time `redis`.
        local load_redis = {}
        for _, k in ipairs({"register_function", "log", "LOG_DEBUG", "LOG_VERBOSE",
                            "LOG_NOTICE", "LOG_WARNING", "REDIS_VERSION",
                            "REDIS_VERSION_NUM"}) do
            load_redis[k] = real.redis[k]
        end
        real.redis.register_function = nil
        -- Library tables are shared by every script of this state: each
        -- global one becomes a read-only view, so no script can change
        -- `redis.call` or `string.format` for the next.
        for _, name in ipairs({"redis", "string", "table", "math", "os", "coroutine",
                               "bit", "cjson", "cmsgpack", "struct"}) do
            local lib = real[name]
            if lib ~= nil then
                local view = setmetatable({}, {
                    __index = lib,
                    __newindex = readonly,
                    __metatable = decoy,
                })
                protected[view] = true
                real[name] = view
            end
        end
        rawset(getmetatable(""), "__metatable", decoy)
        -- (No position: Redis's refusal comes from a C function.)
        real.setmetatable = function(t, mt)
            if protected[t] then
                error("Attempt to modify a readonly table", 0)
            end
            return setmetatable(t, mt)
        end
        real.rawset = function(t, k, v)
            if protected[t] then
                error("Attempt to modify a readonly table", 0)
            end
            return rawset(t, k, v)
        end
        local g = _G
        for k in next, real do
            rawset(g, k, nil)
        end
        local function nonexistent(_, k)
            error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
        end
        setmetatable(real, {__index = nonexistent})
        setmetatable(g, {__index = real, __newindex = readonly, __metatable = decoy})
        protected[g] = true
        setmetatable(load_redis, {__index = nonexistent})
        local load_redis_view = setmetatable({}, {
            __index = load_redis, __newindex = readonly, __metatable = decoy,
        })
        protected[load_redis_view] = true
        local load_api = setmetatable({redis = load_redis_view}, {__index = nonexistent})
        -- Libraries' environment: the library API while one loads, the
        -- globals afterwards (its functions run with them), as Redis swaps
        -- its globals' __index.
        local env_mt = {__index = g, __newindex = readonly, __metatable = decoy}
        local env = setmetatable({}, env_mt)
        protected[env] = true
        local function set_loading(on)
            rawset(env_mt, "__index", on and load_api or g)
        end
        return env, set_loading
        "#,
    )
    .set_name(INTERNAL_CHUNK)
    .eval::<(Table, Function)>()
    .map(|(env, set_loading)| LoadEnv { env, set_loading })
}

/// The environment of libraries' code (`protect_globals`).
pub struct LoadEnv {
    /// Every library chunk's environment.
    pub env: Table,
    /// `set_loading(true)` shows a loading library only Redis's library
    /// API; `false` gives its functions the globals back.
    pub set_loading: Function,
}

/// Redis's rand48 (rand.c): 48-bit state, 31-bit outputs.
fn next_rand48(state: &Cell<u64>) -> u32 {
    let x = state.get().wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & 0xFFFF_FFFF_FFFF;
    state.set(x);
    ((x >> 17) & 0x7FFF_FFFF) as u32
}

/// `redisSrand48(seed)`.
pub fn seed_rand48(state: &Cell<u64>, seed: i32) {
    let s = u64::from(seed as u32);
    state.set(0x330E | ((s & 0xFFFF) << 16) | (((s >> 16) & 0xFFFF) << 32));
}

fn install_random(lua: &Lua, state: Rc<Cell<u64>>) -> mlua::Result<()> {
    let math: Table = lua.globals().get("math")?;
    let st = state.clone();
    let random = lua.create_function(move |_, args: Variadic<f64>| {
        const MAX: f64 = i32::MAX as f64;
        let r = f64::from(next_rand48(&st) % i32::MAX as u32) / MAX;
        match args.len() {
            0 => Ok(r),
            1 => {
                let u = args[0].floor();
                if u < 1.0 {
                    return Err(mlua::Error::RuntimeError("interval is empty".into()));
                }
                Ok((r * u).floor() + 1.0)
            }
            2 => {
                let (l, u) = (args[0].floor(), args[1].floor());
                if l > u {
                    return Err(mlua::Error::RuntimeError("interval is empty".into()));
                }
                Ok((r * (u - l + 1.0)).floor() + l)
            }
            _ => Err(mlua::Error::RuntimeError(
                "wrong number of arguments".into(),
            )),
        }
    })?;
    let randomseed = lua.create_function(move |_, seed: f64| {
        seed_rand48(&state, seed as i64 as i32);
        Ok(())
    })?;
    math.set("random", random)?;
    math.set("randomseed", randomseed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let (lua, _) = new_lua().unwrap();
        // (The libraries' API is taken from `redis`, which `api` installs.)
        lua.globals()
            .set("redis", lua.create_table().unwrap())
            .unwrap();
        protect_globals(&lua).unwrap();
        lua
    }

    #[test]
    fn removed_and_kept() {
        let lua = lua();
        for name in ["io", "print", "dofile", "require", "debug", "setfenv"] {
            let e = lua
                .load(format!("return {name}"))
                .eval::<Value>()
                .unwrap_err();
            assert!(e.to_string().contains("nonexistent global"), "{name}: {e}");
        }
        let kinds: String = lua
            .load("return type(os.clock)..type(os.time)..type(loadstring)..type(bit)..type(cjson)")
            .eval()
            .unwrap();
        assert_eq!(kinds, "functionnilfunctiontabletable");
        let refused: bool = lua
            .load("return loadstring(string.dump(function() return 1 end)) == nil")
            .eval()
            .unwrap();
        assert!(refused);
        for code in [
            "redis = nil",
            "string.format = nil",
            "cjson.encode = nil",
            "math.x = 1",
        ] {
            let e = lua.load(code).exec().unwrap_err();
            assert!(
                e.to_string().contains("Attempt to modify a readonly table"),
                "{code}: {e}"
            );
        }
        let s: String = lua.load("return ('%d'):format(5)").eval().unwrap();
        assert_eq!(s, "5");
        let e = lua.load("x = 1").exec().unwrap_err();
        assert!(e.to_string().contains("Attempt to modify a readonly table"));
    }

    /// Existing globals, library fields and metatables are as read-only as
    /// new globals (Redis 7.0.15's "Try trick global protection" tests).
    #[test]
    fn existing_globals_and_metatables_are_read_only() {
        let lua = lua();
        for code in [
            "tostring = nil",
            "_G = {}",
            "string = {}",
            "setmetatable(_G, {})",
            "getmetatable(_G).__index = {}",
            "rawset(_G, 'tostring', nil)",
            "rawset(string, 'format', nil)",
            "getmetatable('').__index = {}",
            "getmetatable(string).__index = {}",
            "setmetatable(string, {})",
        ] {
            let e = lua.load(code).exec().unwrap_err();
            assert!(
                e.to_string().contains("Attempt to modify a readonly table"),
                "{code}: {e}"
            );
        }
        let s: String = lua
            .load("local t = setmetatable({}, {}) rawset(t, 'a', 'b') return tostring(t.a) .. ('x'):upper()")
            .eval()
            .unwrap();
        assert_eq!(s, "bX", "the functions still work on a script's own tables");
        let e = lua.load("return loadfile").exec().unwrap_err();
        assert!(e
            .to_string()
            .contains("nonexistent global variable 'loadfile'"));
    }

    #[test]
    fn rand48_matches_redis() {
        let st = Cell::new(0);
        seed_rand48(&st, 0);
        // lrand48() after srand48(0), as glibc (same generator) gives.
        assert_eq!(next_rand48(&st), 366850414);
        assert_eq!(next_rand48(&st), 1610402240);
    }
}
