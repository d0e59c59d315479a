//! Lua scripting (EVAL and friends) and Redis 7 functions (FCALL).
//!
//! Each server thread owns one [`Engine`]: a Lua 5.1 state built by
//! `sandbox` with the `redis` API (`api`), the scripts it compiled (by
//! SHA1) and the function libraries it loaded (by name and generation).
//! The engine lives in `ThreadCtx::scripts`, created lazily on a thread's
//! first script; the command layer takes it out while a script runs and
//! puts it back. The process-wide [`Store`] (in `ServerState::scripts`)
//! holds script sources, the function registry and the busy-script
//! registry (`busy`).
//!
//! This module knows nothing of commands: a running script executes
//! `redis.call` through the [`Host`] the command layer passes in.

pub mod api;
mod arg_tables;
pub mod busy;
mod call;
pub mod convert;
mod errors;
mod libs;
mod protected;
mod results;
mod run_host;
pub mod sandbox;
mod sha_key;
pub mod store;

use std::cell::Cell;
use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

use citadel_resp::Reply;
use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, Table, Value};

pub use busy::{Busy, KillError, Slot};
pub use store::{FunctionMeta, Library, Store};

use api::{Registered, Shared};
use convert::{lua_to_reply, ToRespError};
use errors::{
    error_handler, error_value_text, failure_line, install_pcall, inv_error, root_message,
};
use protected::Outcome;
use sha_key::{ShaKey, ShaMap};

/// What `redis.call` may do in the running script.
#[derive(Debug, Clone, Copy)]
pub struct CallRules {
    /// EVAL_RO / FCALL_RO, or a `no-writes` script: write commands refused.
    pub read_only: bool,
    /// The script's `redis.setresp(3)`: commands reply in RESP3.
    pub resp3: bool,
}

/// A `redis.call`'s arguments, packed as the command layer's own
/// arguments are: one buffer and the span of each argument in it.
#[derive(Debug, Clone, Copy)]
pub struct CallArgs<'a> {
    pub buf: &'a [u8],
    pub spans: &'a [Range<usize>],
}

impl<'a> CallArgs<'a> {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i` (empty when out of range).
    pub fn get(&self, i: usize) -> &'a [u8] {
        self.spans.get(i).map_or(&[], |r| &self.buf[r.clone()])
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let buf = self.buf;
        self.spans.iter().map(move |r| &buf[r.clone()])
    }

    /// Arguments `range` of these (cut to those there are).
    pub fn slice(&self, range: Range<usize>) -> CallArgs<'a> {
        let end = range.end.min(self.spans.len());
        CallArgs {
            buf: self.buf,
            spans: &self.spans[range.start.min(end)..end],
        }
    }
}

/// `parts` packed into one buffer and their spans, as a [`CallArgs`] is.
#[cfg(test)]
pub fn pack_line(parts: &[&[u8]]) -> (Vec<u8>, Vec<Range<usize>>) {
    let mut buf = Vec::new();
    let spans = parts
        .iter()
        .map(|p| {
            buf.extend_from_slice(p);
            buf.len() - p.len()..buf.len()
        })
        .collect();
    (buf, spans)
}

/// Runs the commands a script calls.
pub trait Host {
    /// Runs `argv` and writes exactly one RESP reply (maybe an error) to
    /// `out`; returns whether a write command ran.
    fn call(&mut self, argv: CallArgs<'_>, rules: &CallRules, out: &mut Vec<u8>) -> bool;
    /// Whether the script's user may run `argv` (`redis.acl_check_cmd`);
    /// None for an unknown command.
    fn acl_check(&mut self, argv: CallArgs<'_>) -> Option<bool>;
}

/// Lowercase hex SHA1.
pub fn sha1_hex(bytes: &[u8]) -> String {
    sha1_smol::Sha1::from(bytes).digest().to_string()
}

/// An EVAL script's `#!lua flags=...` line (Redis 7).
#[derive(Debug, Clone, Copy, Default)]
pub struct ScriptFlags {
    /// The script has a shebang (flags apply; without one it may write).
    pub shebang: bool,
    pub no_writes: bool,
}

/// An EVAL body's flags (CLIENT PAUSE WRITE holds a script that may
/// write); an error for a shebang EVAL would refuse.
pub fn script_flags(body: &[u8]) -> Result<ScriptFlags, String> {
    eval_shebang(body).map(|(flags, _)| flags)
}

/// Parses an EVAL shebang; returns the flags and the code to compile (the
/// shebang line turned into a comment, so line numbers stay).
fn eval_shebang(body: &[u8]) -> Result<(ScriptFlags, Vec<u8>), String> {
    if !body.starts_with(b"#!") {
        return Ok((ScriptFlags::default(), body.to_vec()));
    }
    let end = body.iter().position(|&c| c == b'\n').unwrap_or(body.len());
    let line = String::from_utf8_lossy(&body[2..end]).into_owned();
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or("");
    if engine != "lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = ScriptFlags {
        shebang: true,
        no_writes: false,
    };
    for p in parts {
        let Some(list) = p.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {p}"));
        };
        for f in list.split(',').filter(|f| !f.is_empty()) {
            if !api::FLAGS.contains(&f) {
                return Err(format!("ERR Unexpected flag in script shebang: {f}"));
            }
            flags.no_writes |= f == "no-writes";
        }
    }
    let mut code = b"--".to_vec();
    code.extend_from_slice(body);
    Ok((flags, code))
}

/// How a script is called: its command line, borrowed as the command
/// layer parsed it (no list of its arguments is built per run).
pub struct Invocation<'a> {
    /// The whole command line (FUNCTION STATS shows it).
    pub command: CallArgs<'a>,
    /// Which of its arguments are the KEYS; the ARGV follow them.
    pub keys: Range<usize>,
    /// EVAL_RO / FCALL_RO.
    pub ro_command: bool,
    /// Most bytes the script's reply may take.
    pub out_limit: usize,
}

impl<'a> Invocation<'a> {
    pub fn keys(&self) -> CallArgs<'a> {
        self.command.slice(self.keys.clone())
    }

    pub fn args(&self) -> CallArgs<'a> {
        self.command.slice(self.keys.end..self.command.len())
    }
}

struct Compiled {
    func: Function,
    flags: ScriptFlags,
}

struct LoadedLibrary {
    generation: u64,
    functions: HashMap<String, Function>,
}

pub struct Engine {
    lua: Lua,
    shared: Rc<Shared>,
    slot: Arc<Slot>,
    /// The message handler of every run (`errors::error_handler`).
    handler: Function,
    arg_tables: arg_tables::ArgTables,
    scripts: ShaMap<Compiled>,
    script_epoch: u64,
    libraries: HashMap<String, LoadedLibrary>,
    /// Libraries' environment (Redis's library API while one loads).
    load_env: sandbox::LoadEnv,
    /// How long the last run took (ms), for the caller's slow-script log
    /// (`take_run_ms`).
    last_run_ms: Cell<u64>,
    /// What `redis.call` / `redis.pcall` point to (as long as the state).
    _calls: Box<call::CallState>,
    /// The hook that stops a killed, interrupted or timed-out script.
    hook: busy::Hook,
}

const USER_SCRIPT: &str = "@user_script";
const USER_FUNCTION: &str = "@user_function";

impl Engine {
    /// A thread's engine; `interrupted`, called at each check of the hook,
    /// says the server shuts down (and may serve what waits meanwhile).
    pub fn new(
        slot: Arc<Slot>,
        interrupted: Arc<dyn Fn() -> bool + Send + Sync>,
        version: &str,
    ) -> mlua::Result<Engine> {
        let (lua, rand) = sandbox::new_lua()?;
        install_pcall(&lua)?;
        // The collector keeps Lua's own pace (pause 200, step multiplier
        // 200), driven by allocation alone: see `collect_if_needed`.
        // Redis 7 seeds the generator once, not per script.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as i32 ^ d.as_secs() as i32)
            .unwrap_or(0);
        sandbox::seed_rand48(&rand, seed);
        let shared = Rc::new(Shared::default());
        let (call, pcall, calls) = call::functions(&lua, shared.clone(), slot.clone())?;
        api::install(&lua, shared.clone(), version, call, pcall)?;
        let arg_tables = arg_tables::ArgTables::new(&lua)?;
        let handler = error_handler(&lua)?;
        let load_env = sandbox::protect_globals(&lua)?;
        let hook = busy::Hook::install(&lua, slot.clone(), interrupted)?;
        slot.set_vm_bytes(lua.used_memory());
        Ok(Engine {
            lua,
            shared,
            slot,
            handler,
            arg_tables,
            scripts: ShaMap::default(),
            script_epoch: 0,
            libraries: HashMap::new(),
            load_env,
            last_run_ms: Cell::new(0),
            _calls: calls,
            hook,
        })
    }

    /// An engine for loading libraries only (start-up).
    pub fn detached(version: &str) -> mlua::Result<Engine> {
        Engine::new(Arc::default(), Arc::new(|| false), version)
    }

    fn sync_epoch(&mut self, store: &Store) {
        let epoch = store.script_epoch();
        if epoch != self.script_epoch {
            self.scripts.clear();
            self.script_epoch = epoch;
        }
    }

    /// Compiles `body` (SCRIPT LOAD, EVAL); Err is the error line.
    pub fn compile(
        &mut self,
        store: &Store,
        sha: &str,
        body: &[u8],
    ) -> Result<ScriptFlags, String> {
        self.sync_epoch(store);
        let key = ShaKey::new(sha);
        if let Some(c) = key.and_then(|k| self.scripts.get(&k)) {
            return Ok(c.flags);
        }
        let (flags, code) = eval_shebang(body)?;
        let func = self
            .lua
            .load(&code[..])
            .set_name(USER_SCRIPT)
            .set_mode(ChunkMode::Text)
            .into_function()
            .map_err(|e| {
                format!(
                    "ERR Error compiling script (new function): {}",
                    root_message(&e)
                )
            })?;
        // Every SHA given is 40 hex digits (a shorter name is not kept).
        if let Some(key) = key {
            self.scripts.insert(key, Compiled { func, flags });
        }
        Ok(flags)
    }

    /// EVAL / EVALSHA of a script the store knows (`sha` lowercase).
    pub fn eval(
        &mut self,
        store: &Store,
        sha: &str,
        inv: &Invocation<'_>,
        out: &mut Reply<'_>,
        host: &mut dyn Host,
    ) {
        self.sync_epoch(store);
        let Some(key) = ShaKey::new(sha) else {
            out.error(b"NOSCRIPT No matching script. Please use EVAL.");
            return;
        };
        // One hash lookup when this thread compiled it already.
        let c = match self.scripts.get(&key) {
            Some(c) => c,
            None => {
                let Some(body) = store.script(sha) else {
                    out.error(b"NOSCRIPT No matching script. Please use EVAL.");
                    return;
                };
                if let Err(e) = self.compile(store, sha, &body) {
                    out.error(e.as_bytes());
                    return;
                }
                let Some(c) = self.scripts.get(&key) else {
                    return;
                };
                c
            }
        };
        let flags = c.flags;
        if inv.ro_command && flags.shebang && !flags.no_writes {
            out.error(b"ERR Can not execute a script with write flag using *_ro command.");
            return;
        }
        if let Err(e) = self
            .arg_tables
            .set_globals(&self.lua, inv.keys(), inv.args())
        {
            out.error(format!("ERR {}", root_message(&e)).as_bytes());
            return;
        }
        let read_only = inv.ro_command || flags.no_writes;
        self.run(store, &c.func, sha, false, read_only, inv, out, host);
        self.collect_if_needed();
    }

    /// FCALL / FCALL_RO of `name`.
    pub fn fcall(
        &mut self,
        store: &Store,
        name: &str,
        inv: &Invocation<'_>,
        out: &mut Reply<'_>,
        host: &mut dyn Host,
    ) {
        let Some((lib, meta)) = store.functions().function(name) else {
            out.error(b"ERR Function not found");
            return;
        };
        if inv.ro_command && !meta.has_flag("no-writes") {
            out.error(b"ERR Can not execute a script with write flag using *_ro command.");
            return;
        }
        let current = self
            .libraries
            .get(&lib.name)
            .is_some_and(|l| l.generation == lib.generation);
        if !current {
            // Accepted by its FUNCTION LOAD already: no timeout here.
            match self.load_library(&lib.code, None) {
                Ok(registered) => self.keep_library(&lib.name, lib.generation, registered),
                Err(e) => {
                    out.error(e.as_bytes());
                    return;
                }
            }
        }
        let Some(func) = self
            .libraries
            .get(&lib.name)
            .and_then(|l| l.functions.get(&meta.name))
            .cloned()
        else {
            out.error(b"ERR Function not found");
            return;
        };
        let read_only = inv.ro_command || meta.has_flag("no-writes");
        self.run(store, &func, &meta.name, true, read_only, inv, out, host);
        self.collect_if_needed();
    }

    /// Runs a library's code, collecting what it registers. `timeout_ms`:
    /// how long its top-level code may run (Redis's FUNCTION LOAD
    /// timeout), for code a client just gave; None for a library already
    /// accepted (this thread's own copy of it, one saved by an earlier
    /// run), which a busy moment must not drop.
    pub fn load_library(
        &mut self,
        code: &str,
        timeout_ms: Option<u64>,
    ) -> Result<Vec<Registered>, String> {
        // The shebang line becomes a comment: line numbers stay.
        let code = format!("--{code}");
        let func = self
            .lua
            .load(&code)
            .set_name(USER_FUNCTION)
            .set_mode(ChunkMode::Text)
            .set_environment(self.load_env.env.clone())
            .into_function()
            .map_err(|e| format!("ERR Error compiling function: {}", root_message(&e)))?;
        *self.shared.registering.borrow_mut() = Some(Vec::new());
        self.slot.set_load_timeout(timeout_ms);
        let result = (self.load_env.set_loading.call::<()>(true))
            .and_then(|()| sandbox::bound_memory(&self.lua, true))
            .and_then(|()| protected::call(&self.lua, &self.handler, &func, &[], None));
        let settled = self.hook.settle(&self.lua);
        let _ = sandbox::bound_memory(&self.lua, false);
        self.slot.set_load_timeout(None);
        let restored = self.load_env.set_loading.call::<()>(false).and(settled);
        let registered = self
            .shared
            .registering
            .borrow_mut()
            .take()
            .unwrap_or_default();
        if let Err(e) = restored {
            return Err(format!("ERR {}", root_message(&e)));
        }
        match result {
            Ok(Outcome::Written | Outcome::Returned(_)) if registered.is_empty() => {
                Err("ERR No functions registered".into())
            }
            Ok(Outcome::Written | Outcome::Returned(_)) => Ok(registered),
            Ok(Outcome::Raised(Value::Table(t))) => {
                let msg: String = t
                    .raw_get::<Option<String>>("err")
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                Err(format!("ERR Error registering functions: {msg}"))
            }
            Ok(Outcome::Raised(v)) => Err(format!(
                "ERR Error registering functions: {}",
                error_value_text(&v)
            )),
            Err(e) => Err(format!(
                "ERR Error registering functions: {}",
                root_message(&e)
            )),
        }
    }

    /// Keeps a library this thread loaded, current as of `generation`.
    pub fn keep_library(&mut self, name: &str, generation: u64, registered: Vec<Registered>) {
        let functions = registered
            .into_iter()
            .map(|r| (r.name, r.callback))
            .collect();
        self.libraries.insert(
            name.to_string(),
            LoadedLibrary {
                generation,
                functions,
            },
        );
    }

    fn strings(&self, items: CallArgs<'_>) -> mlua::Result<Table> {
        let t = self.lua.create_table_with_capacity(items.len(), 0)?;
        for (i, s) in items.iter().enumerate() {
            t.raw_set(i + 1, self.lua.create_string(s)?)?;
        }
        Ok(t)
    }

    /// Runs `func` protected (`protected::call`, the error handler around
    /// it) and writes its reply. `redis.call` reaches `host` through
    /// `shared.run_host` for the length of the run.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        store: &Store,
        func: &Function,
        name: &str,
        is_function: bool,
        read_only: bool,
        inv: &Invocation<'_>,
        out: &mut Reply<'_>,
        host: &mut dyn Host,
    ) {
        self.shared.resp3.set(false);
        let body = || -> mlua::Result<()> {
            // A function gets KEYS and ARGV as its two parameters (EVAL's
            // are globals, set by `arg_tables`).
            let tables = if is_function {
                Some((self.strings(inv.keys())?, self.strings(inv.args())?))
            } else {
                None
            };
            let pair;
            let params: &[&Table] = match &tables {
                Some((k, a)) => {
                    pair = [k, a];
                    &pair
                }
                None => &[],
            };
            let entered = self.shared.run_host.enter(host, read_only);
            sandbox::bound_memory(&self.lua, true)?;
            let result = protected::call(&self.lua, &self.handler, func, params, Some(&mut *out));
            self.hook.settle(&self.lua)?;
            sandbox::bound_memory(&self.lua, false)?;
            drop(entered);
            match result? {
                Outcome::Written => {}
                Outcome::Returned(value) => self.write_reply(&value, out, inv.out_limit),
                Outcome::Raised(value) => out.error(&failure_line(&value, name)),
            }
            Ok(())
        };
        let keys = inv.keys.len();
        let (result, ms) = store
            .busy
            .run(&self.slot, is_function, name, inv.command, keys, body);
        self.last_run_ms.set(ms);
        if let Err(e) = result {
            inv_error(out, name, &e);
        }
    }

    /// How long the run since the last call took, in milliseconds (0 when
    /// none ran: the script was refused before it started).
    pub fn take_run_ms(&self) -> u64 {
        self.last_run_ms.replace(0)
    }

    /// A script's return value as its reply, or the error replacing it.
    fn write_reply(&self, value: &Value, out: &mut Reply<'_>, limit: usize) {
        let mark = out.buf.len();
        let failed = match lua_to_reply(value, out, self.shared.resp3.get(), limit) {
            Ok(()) => return,
            Err(ToRespError::TooLarge) => {
                b"ERR the script's reply is larger than the client output limit".to_vec()
            }
            Err(ToRespError::TooDeep) => b"ERR reached lua stack limit".to_vec(),
            Err(ToRespError::Lua(e)) => format!("ERR {}", root_message(&e)).into_bytes(),
        };
        out.buf.truncate(mark);
        out.error(&failed);
    }

    /// A run that left the state past half its bound (stopped by the
    /// hook) is collected in full at once, so the next script starts under
    /// it. Otherwise Lua's incremental collector paces itself by
    /// allocation: a forced step every 50 runs (Redis's habit, kept here
    /// before) restarted a cycle whenever one had ended, and measured
    /// ~260 instructions a run worse than Lua's own pace (EVALSHA of a
    /// 2-key SET + INCR, 86,400 runs under callgrind: 16,047 -> 15,784);
    /// Lua's pace with a pause of 400 was no better than the step (16,051
    /// vs 15,976 over 38,400 runs: the bigger heap's string-table resizes
    /// and free bursts).
    fn collect_if_needed(&mut self) {
        if self.lua.used_memory() > sandbox::COLLECT_ABOVE {
            let _ = self.arg_tables.release(&self.lua);
            let _ = self.lua.gc_collect();
        }
        self.slot.set_vm_bytes(self.lua.used_memory());
    }
}

#[cfg(test)]
mod tests;
