//! The `redis` table scripts see: `call` and `pcall` (`call.rs`: they
//! reach the running script's host), `error_reply`,
//! `status_reply`, `sha1hex`, `log` and the `LOG_*` levels, `setresp`,
//! `set_repl` / `replicate_commands` and the `REPL_*` flags (kept as
//! no-ops, as Redis 7 does), `REDIS_VERSION` / `REDIS_VERSION_NUM`,
//! `breakpoint` / `debug` (no-ops outside the debugger), `acl_check_cmd`
//! and `register_function` (only while FUNCTION LOAD runs a library).

use std::cell::{Cell, RefCell};

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::convert::{error_table, error_text};
use super::libs::err;

/// Function flags Redis 7 knows (`register_function{flags=...}` and the
/// `#!lua flags=` shebang of EVAL scripts).
pub const FLAGS: &[&str] = &[
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// A function a library registered while it loaded.
pub struct Registered {
    pub name: String,
    pub callback: Function,
    pub flags: Vec<&'static str>,
    pub description: Option<String>,
}

impl Registered {
    /// What the function registry keeps of it (no Lua value).
    pub fn meta(&self) -> super::FunctionMeta {
        super::FunctionMeta {
            name: self.name.clone(),
            description: self.description.clone(),
            flags: self.flags.clone(),
        }
    }
}

/// Per-state values the API reads and the engine resets per run.
#[derive(Default)]
pub struct Shared {
    /// `redis.setresp(3)` was called in this run.
    pub resp3: Cell<bool>,
    /// Some while a library loads: what it registered so far.
    pub registering: RefCell<Option<Vec<Registered>>>,
    /// The running script's host (`call.rs`).
    pub run_host: super::run_host::RunHost,
}

/// The buffers one `redis.call` packs its arguments and reply into.
#[derive(Default)]
pub struct CallScratch {
    pub args: Vec<u8>,
    pub spans: Vec<std::ops::Range<usize>>,
    pub reply: Vec<u8>,
}

impl CallScratch {
    /// Bigger than this, a buffer is freed after the call rather than kept
    /// (one huge value must not pin its size in every thread's state).
    const KEEP_BYTES: usize = 64 * 1024;

    /// Empties the buffers for the next call, freeing any that grew huge.
    pub fn keep_if_small(&mut self) {
        for buf in [&mut self.args, &mut self.reply] {
            if buf.capacity() > Self::KEEP_BYTES {
                *buf = Vec::new();
            }
            buf.clear();
        }
        self.spans.clear();
    }
}

/// Builds `redis` into the globals and returns it. `call` and `pcall` are
/// the permanent `redis.call` / `redis.pcall` (`call.rs`): Rust (C)
/// functions, as in Redis, so a `return redis.call(...)` is no Lua tail
/// call and the error position stays the script's line.
pub fn install(
    lua: &Lua,
    shared: std::rc::Rc<Shared>,
    version: &str,
    call: Function,
    pcall: Function,
) -> mlua::Result<Table> {
    let redis = lua.create_table()?;
    redis.set("call", call)?;
    redis.set("pcall", pcall)?;
    redis.set(
        "error_reply",
        lua.create_function(|lua, args: MultiValue| {
            let args: Vec<Value> = args.into_iter().collect();
            let [Value::String(s)] = args.as_slice() else {
                return Err(err("wrong number or type of arguments"));
            };
            let b = s.as_bytes();
            let dashed = if b.first() == Some(&b'-') {
                b.to_vec()
            } else {
                [b"-".as_slice(), &b].concat()
            };
            error_table(lua, &error_text(&dashed))
        })?,
    )?;
    redis.set(
        "status_reply",
        lua.create_function(|lua, args: MultiValue| {
            let args: Vec<Value> = args.into_iter().collect();
            let [Value::String(s)] = args.as_slice() else {
                return Err(err("wrong number or type of arguments"));
            };
            let t = lua.create_table()?;
            t.set("ok", s.clone())?;
            Ok(t)
        })?,
    )?;
    redis.set(
        "sha1hex",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(err("wrong number of arguments"));
            }
            let bytes = match &args[0] {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Integer(i) => i.to_string().into_bytes(),
                Value::Number(n) => n.to_string().into_bytes(),
                _ => Vec::new(),
            };
            Ok(super::sha1_hex(&bytes))
        })?,
    )?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        redis.set(name, level)?;
    }
    redis.set(
        "log",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() < 2 {
                return Err(err("redis.log() requires two arguments or more."));
            }
            let level = match &args[0] {
                Value::Integer(i) => *i,
                Value::Number(n) => *n as i64,
                _ => return Err(err("First argument must be a number (log level).")),
            };
            if !(0..=3).contains(&level) {
                return Err(err("Invalid debug level."));
            }
            let mut msg = Vec::new();
            for (i, a) in args.iter().skip(1).enumerate() {
                if i > 0 {
                    msg.push(b' ');
                }
                if let Some(s) = lua.coerce_string(a.clone())? {
                    msg.extend_from_slice(&s.as_bytes());
                }
            }
            let msg = String::from_utf8_lossy(&msg);
            match level {
                0 => tracing::debug!(target: "citadel::script", "{msg}"),
                1 | 2 => tracing::info!(target: "citadel::script", "{msg}"),
                _ => tracing::warn!(target: "citadel::script", "{msg}"),
            }
            Ok(())
        })?,
    )?;
    let resp = shared.clone();
    redis.set(
        "setresp",
        lua.create_function(move |_, args: MultiValue| {
            if args.len() != 1 {
                return Err(err("redis.setresp() requires one argument."));
            }
            match &args[0] {
                Value::Integer(2) => resp.resp3.set(false),
                Value::Integer(3) => resp.resp3.set(true),
                Value::Number(n) if *n == 2.0 => resp.resp3.set(false),
                Value::Number(n) if *n == 3.0 => resp.resp3.set(true),
                _ => return Err(err("RESP version must be 2 or 3.")),
            }
            Ok(())
        })?,
    )?;
    for (name, v) in [
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.set(name, v)?;
    }
    redis.set("set_repl", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.set(
        "replicate_commands",
        lua.create_function(|_, _: MultiValue| Ok(true))?,
    )?;
    redis.set(
        "breakpoint",
        lua.create_function(|_, _: MultiValue| Ok(false))?,
    )?;
    redis.set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.set("acl_check_cmd", acl_check_cmd(lua, shared.clone())?)?;
    redis.set("REDIS_VERSION", version)?;
    redis.set("REDIS_VERSION_NUM", version_num(version))?;
    redis.set("register_function", register_function(lua, shared)?)?;
    lua.globals().set("redis", redis.clone())?;
    Ok(redis)
}

/// `redis.acl_check_cmd(name, args...)`: whether the user running the
/// script may run that command line (Redis's
/// `luaRedisAclCheckCmdPermissionsCommand`: the command, its keys and
/// channels; nothing is logged). An unknown command raises.
fn acl_check_cmd(lua: &Lua, shared: std::rc::Rc<Shared>) -> mlua::Result<Function> {
    const OUTSIDE: &str = "redis.acl_check_cmd can only be called inside a script invocation";
    lua.create_function(move |lua, args: MultiValue| {
        if !shared.run_host.is_running() {
            return Err(err(OUTSIDE));
        }
        if args.is_empty() {
            return Err(err(
                "Please specify at least one argument for this redis lib call",
            ));
        }
        let (mut buf, mut spans) = (Vec::new(), Vec::with_capacity(args.len()));
        for arg in args {
            let text = match arg {
                Value::String(_) | Value::Integer(_) | Value::Number(_) => {
                    lua.coerce_string(arg)?
                }
                _ => None,
            };
            let Some(text) = text else {
                return Err(err(
                    "Lua redis lib command arguments must be strings or integers",
                ));
            };
            let start = buf.len();
            buf.extend_from_slice(&text.as_bytes());
            spans.push(start..buf.len());
        }
        let argv = super::CallArgs {
            buf: &buf,
            spans: &spans,
        };
        match shared.run_host.with(|host, _| host.acl_check(argv)) {
            Some(Some(allowed)) => Ok(allowed),
            Some(None) => Err(err("Invalid command passed to redis.acl_check_cmd()")),
            None => Err(err(OUTSIDE)),
        }
    })
}

/// "7.2.4" → 0x070204.
fn version_num(v: &str) -> i64 {
    v.split('.')
        .take(3)
        .map(|p| p.parse::<i64>().unwrap_or(0))
        .fold(0, |acc, p| (acc << 8) | p)
}

fn register_function(lua: &Lua, shared: std::rc::Rc<Shared>) -> mlua::Result<Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let args: Vec<Value> = args.into_iter().collect();
        let (name, callback, flags, description) = match args.as_slice() {
            [Value::Table(t)] => named_args(lua, t)?,
            [_] => {
                return Err(err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."))
            }
            [name, callback] => {
                let Value::Function(f) = callback else {
                    return Err(err("second argument to redis.register_function must be a function"));
                };
                let name = text_of(lua, name, "first argument to redis.register_function must be a string")?;
                (name, f.clone(), Vec::new(), None)
            }
            _ => return Err(err("wrong number of arguments to redis.register_function")),
        };
        if !super::store::valid_name(&name) {
            return Err(err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"));
        }
        let mut reg = shared.registering.borrow_mut();
        let Some(list) = reg.as_mut() else {
            return Err(err("redis.register_function can only be called on FUNCTION LOAD command"));
        };
        if list.iter().any(|r| r.name == name) {
            return Err(err("Function already exists in the library"));
        }
        list.push(Registered {
            name,
            callback,
            flags,
            description,
        });
        Ok(())
    })
}

/// `v` as Redis's luaGetStringSds reads it: a string, or a number as Lua
/// writes it; else `error`.
fn text_of(lua: &Lua, v: &Value, error: &str) -> mlua::Result<String> {
    match lua.coerce_string(v.clone())? {
        Some(s) => Ok(s.to_string_lossy()),
        None => Err(err(error)),
    }
}

type Named = (String, Function, Vec<&'static str>, Option<String>);

/// Redis's luaRegisterFunctionReadNamedArgs: keys and flags in any case.
fn named_args(lua: &Lua, t: &Table) -> mlua::Result<Named> {
    let (mut name, mut callback, mut flags, mut description) = (None, None, Vec::new(), None);
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        const KEY: &str = "named argument key given to redis.register_function is not a string";
        let key = text_of(lua, &k, KEY)?.to_ascii_lowercase();
        match key.as_str() {
            "function_name" => {
                const NAME: &str =
                    "function_name argument given to redis.register_function must be a string";
                name = Some(text_of(lua, &v, NAME)?);
            }
            "callback" => match v {
                Value::Function(f) => callback = Some(f),
                _ => {
                    return Err(err(
                        "callback argument given to redis.register_function must be a function",
                    ))
                }
            },
            "description" => {
                const DESCRIPTION: &str =
                    "description argument given to redis.register_function must be a string";
                description = Some(text_of(lua, &v, DESCRIPTION)?);
            }
            "flags" => {
                let Value::Table(ft) = v else {
                    return Err(err("flags argument to redis.register_function must be a table representing function flags"));
                };
                for f in ft.sequence_values::<Value>() {
                    let f = text_of(lua, &f?, "unknown flag given")?;
                    match FLAGS.iter().find(|known| known.eq_ignore_ascii_case(&f)) {
                        Some(known) => flags.push(*known),
                        None => return Err(err("unknown flag given")),
                    }
                }
                // A set of flags, listed in Redis's order (its bit order).
                flags.sort_by_key(|f| FLAGS.iter().position(|k| k == f));
                flags.dedup();
            }
            _ => return Err(err("unknown argument given to redis.register_function")),
        }
    }
    let name =
        name.ok_or_else(|| err("redis.register_function must get a function name argument"))?;
    let callback =
        callback.ok_or_else(|| err("redis.register_function must get a callback argument"))?;
    Ok((name, callback, flags, description))
}
