//! Redis 7 functions: FCALL FCALL_RO and FUNCTION LOAD|LIST|DELETE|FLUSH|
//! DUMP|RESTORE|STATS|KILL|HELP. Libraries are checked by running them in
//! this thread's engine, registered process-wide (`script::Store`) and
//! saved next to the cache file on every change.

use super::args::Args;
use super::context::{reply_lines, Ctx};
use super::error::{CmdError, CmdResult};
use super::function_stats::write_stats;
use super::scripting::{invocation, kill_running, run_script, with_engine};
use super::table::{keyless, CommandDef};
use crate::glob::glob_match;
use crate::script::busy::LOAD_TIMEOUT_MS;
use crate::script::store::{decode, library_name};
use crate::script::{Engine, FunctionMeta, Library, Store};

pub fn fcall(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    fcall_common(ctx, args, false)
}

pub fn fcall_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    fcall_common(ctx, args, true)
}

fn fcall_common(ctx: &mut Ctx<'_>, args: Args<'_>, ro: bool) -> CmdResult {
    let name = String::from_utf8_lossy(args.get(1)).into_owned();
    if args.int(2).is_err() {
        // Redis looks the function up first, then reads numkeys with its
        // own error (EVAL's is the integer error).
        ensure_saved_loaded(ctx)?;
        let found = ctx.state.scripts.functions().function(&name).is_some();
        return Err(CmdError::Static(if found {
            "ERR Bad number of keys provided"
        } else {
            "ERR Function not found"
        }));
    }
    let inv = invocation(ctx, args, ro)?;
    ensure_saved_loaded(ctx)?;
    run_script(ctx, &inv, &name.clone(), |engine, store, inv, out, host| {
        engine.fcall(store, &name, inv, out, host)
    })
}

/// Checks a library's code in `engine`: (name, its functions).
/// `timeout_ms`: as `Engine::load_library` takes it.
fn check_library(
    engine: &mut Engine,
    code: &str,
    timeout_ms: Option<u64>,
) -> Result<(String, Vec<FunctionMeta>), String> {
    let name = library_name(code)?;
    let registered = engine.load_library(code, timeout_ms)?;
    let metas = registered.iter().map(|r| r.meta()).collect();
    Ok((name, metas))
}

fn library(store: &Store, name: String, code: &str, functions: Vec<FunctionMeta>) -> Library {
    Library {
        name,
        code: code.to_string(),
        functions,
        generation: store.next_generation(),
    }
}

/// Functions saved by an earlier run are registered before the first
/// function command of this one.
fn ensure_saved_loaded(ctx: &mut Ctx<'_>) -> CmdResult {
    let store = ctx.state.scripts.clone();
    if store.saved_restored() {
        return Ok(());
    }
    with_engine(ctx, |engine, _| {
        let mut registry = store.functions_mut();
        if store.saved_restored() {
            return;
        }
        for code in &store.saved() {
            // Loaded by an earlier run: no timeout drops it now.
            match check_library(engine, code, None) {
                Ok((name, metas)) => {
                    if let Err(e) = registry.add(library(&store, name, code, metas), true) {
                        tracing::error!(error = %e, "a saved function library was not restored");
                    }
                }
                Err(e) => tracing::error!(error = %e, "a saved function library does not load"),
            }
        }
        store.mark_saved_restored();
    })
}

const SC: &str = "scripting";
const WRITE: &[&str] = &["write", "denyoom", "noscript"];

#[rustfmt::skip]
pub static SUBCOMMANDS: &[CommandDef] = &[
    keyless("function|load", -3, WRITE, SC, "7.0.0", "Creates a library.", load),
    keyless("function|list", -2, &["noscript"], SC, "7.0.0", "Returns information about all libraries.", list),
    keyless("function|delete", 3, &["write", "noscript"], SC, "7.0.0", "Deletes a library and its functions.", delete),
    keyless("function|flush", -2, &["write", "noscript"], SC, "7.0.0", "Deletes all libraries and functions.", flush),
    keyless("function|dump", 2, &["noscript"], SC, "7.0.0", "Dumps all libraries into a serialized binary payload.", dump),
    keyless("function|restore", -3, WRITE, SC, "7.0.0", "Restores all libraries from a payload.", restore),
    keyless("function|stats", 2, &["noscript", "allow_busy"], SC, "7.0.0", "Returns information about a function during execution.", stats),
    keyless("function|kill", 2, &["noscript", "allow_busy"], SC, "7.0.0", "Terminates a function during execution.", kill),
    keyless("function|help", 2, &["loading", "stale"], SC, "7.0.0", "Returns helpful text about the different subcommands.", help),
];

fn load(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (replace, code) = match args.len() {
        3 => (false, args.get(2)),
        4 if args.is(2, "replace") => (true, args.get(3)),
        _ => {
            return Err(CmdError::quoting(
                "ERR Unknown option given: ",
                args.get(2),
                "",
            ))
        }
    };
    ensure_saved_loaded(ctx)?;
    let code = String::from_utf8_lossy(code).into_owned();
    let store = ctx.state.scripts.clone();
    let (name, metas) = with_engine(ctx, |engine, _| {
        check_library(engine, &code, Some(LOAD_TIMEOUT_MS))
    })?
    .map_err(CmdError::Text)?;
    store
        .functions_mut()
        .add(library(&store, name.clone(), &code, metas), replace)
        .map_err(CmdError::Text)?;
    store.persist();
    ctx.out.bulk(name.as_bytes());
    Ok(())
}

fn list(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut pattern, mut with_code) = (None, false);
    let mut i = 2;
    while i < args.len() {
        // Each option once, as Redis reads them: a second is unknown.
        if !with_code && args.is(i, "withcode") {
            with_code = true;
        } else if pattern.is_none() && args.is(i, "libraryname") {
            if i + 1 == args.len() {
                return Err(CmdError::Static("ERR library name argument was not given"));
            }
            pattern = Some(args.get(i + 1));
            i += 1;
        } else {
            return Err(CmdError::quoting("ERR Unknown argument ", args.get(i), ""));
        }
        i += 1;
    }
    ensure_saved_loaded(ctx)?;
    let store = ctx.state.scripts.clone();
    let registry = store.functions();
    let libs: Vec<_> = registry
        .libraries
        .values()
        .filter(|l| pattern.is_none_or(|p| glob_match(p, l.name.as_bytes())))
        .collect();
    let out = &mut ctx.out;
    out.array(libs.len());
    for lib in libs {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(lib.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(lib.functions.len());
        for f in &lib.functions {
            out.map(3);
            out.bulk(b"name");
            out.bulk(f.name.as_bytes());
            out.bulk(b"description");
            match &f.description {
                Some(d) => out.bulk(d.as_bytes()),
                None => out.null(),
            }
            out.bulk(b"flags");
            out.set(f.flags.len());
            for flag in &f.flags {
                out.simple(flag.as_bytes());
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(lib.code.as_bytes());
        }
    }
    Ok(())
}

fn delete(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ensure_saved_loaded(ctx)?;
    let name = String::from_utf8_lossy(args.get(2)).into_owned();
    let store = ctx.state.scripts.clone();
    if !store.functions_mut().remove(&name) {
        return Err(CmdError::Static("ERR Library not found"));
    }
    store.persist();
    ctx.out.ok();
    Ok(())
}

fn flush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::subcommand_syntax("function", args.get(1)));
    }
    if !args.is_flush_mode(2) {
        return Err(CmdError::Static(
            "ERR FUNCTION FLUSH only supports SYNC|ASYNC option",
        ));
    }
    ensure_saved_loaded(ctx)?;
    let store = ctx.state.scripts.clone();
    store.functions_mut().clear();
    store.persist();
    ctx.out.ok();
    Ok(())
}

fn dump(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ensure_saved_loaded(ctx)?;
    let payload = ctx.state.scripts.dump();
    ctx.out.bulk(&payload);
    Ok(())
}

#[derive(PartialEq)]
enum Policy {
    Append,
    Replace,
    Flush,
}

fn restore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let policy =
        match args.len() {
            3 => Policy::Append,
            4 if args.is(3, "append") => Policy::Append,
            4 if args.is(3, "replace") => Policy::Replace,
            4 if args.is(3, "flush") => Policy::Flush,
            4 => return Err(CmdError::Static(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            )),
            _ => return Err(CmdError::subcommand_syntax("function", args.get(1))),
        };
    let codes = decode(args.get(2)).ok_or(CmdError::Static(
        "ERR DUMP payload version or checksum are wrong",
    ))?;
    ensure_saved_loaded(ctx)?;
    let store = ctx.state.scripts.clone();
    let checked = with_engine(ctx, |engine, _| {
        codes
            .iter()
            .map(|code| {
                check_library(engine, code, Some(LOAD_TIMEOUT_MS)).map(|(n, m)| (n, code, m))
            })
            .collect::<Result<Vec<_>, String>>()
    })?
    .map_err(CmdError::Text)?;
    {
        let mut registry = store.functions_mut();
        // All or nothing: apply to a copy, swap in when every library fits.
        let mut next = registry.clone_registry();
        if policy == Policy::Flush {
            next.clear();
        }
        for (name, code, metas) in checked {
            if policy == Policy::Append && next.libraries.contains_key(&name) {
                return Err(CmdError::Text(format!("ERR Library {name} already exists")));
            }
            next.add(library(&store, name, code, metas), true)
                .map_err(CmdError::Text)?;
        }
        *registry = next;
    }
    store.persist();
    ctx.out.ok();
    Ok(())
}

fn stats(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ensure_saved_loaded(ctx)?;
    write_stats(&ctx.state.scripts, &mut ctx.out);
    Ok(())
}

fn kill(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    kill_running(ctx, false)
}

fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    reply_lines(
        &mut ctx.out,
        &[
            "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "FCALL <FUNCTION NAME> nkeys <key1 .. keyn> <arg1 .. argn>",
            "    Call a function with the given name and arguments.",
            "FCALL_RO <FUNCTION NAME> nkeys <key1 .. keyn> <arg1 .. argn>",
            "    Call a read-only function with the given name and arguments.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that REPLACE might cause name collisions with functions",
            "      of other libraries, in which case the command will fail).",
            "HELP",
            "    Print this help.",
        ],
    );
    Ok(())
}
