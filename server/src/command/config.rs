//! CONFIG GET / SET / RESETSTAT / HELP over Citadel's settings, under the
//! parameter names Redis clients and tools ask for.

use super::args::Args;
use super::dispatch::{reply_lines, Ctx};
use super::error::{CmdError, CmdResult};
use super::glob::glob_match;
use super::table::{keyless, CommandDef, Handler};
use crate::state::ServerState;

const fn sub(
    name: &'static str,
    arity: i32,
    summary: &'static str,
    handler: Handler,
) -> CommandDef {
    keyless(
        name,
        arity,
        &["admin", "noscript", "loading", "stale"],
        "server",
        "2.0.0",
        summary,
        handler,
    )
}

#[rustfmt::skip]
pub static SUBCOMMANDS: &[CommandDef] = &[
    sub("config|get", -3, "Returns the effective values of configuration parameters.", get),
    sub("config|set", -4, "Sets configuration parameters in-flight.", set),
    sub("config|resetstat", 2, "Resets the server's statistics.", resetstat),
    sub("config|help", 2, "Returns helpful text about the different subcommands.", help),
];

/// Every parameter CONFIG GET knows, in a stable order.
const PARAMS: &[&str] = &[
    "bind",
    "port",
    "maxmemory",
    "maxmemory-policy",
    "maxclients",
    "requirepass",
    "save",
    "appendonly",
    "databases",
    "timeout",
    "proto-max-bulk-len",
    "io-threads",
    "client-output-buffer-limit",
    "dir",
    "dbfilename",
    "hz",
];

fn value(state: &ServerState, param: &str) -> String {
    let s = &state.settings;
    let path = state.cache.path();
    match param {
        "bind" => s.bind.clone(),
        "port" => s.port.to_string(),
        "maxmemory" => state.cache.stats().file_bytes.to_string(),
        // The cache evicts whole segments, oldest first: closest to LRU.
        "maxmemory-policy" => "allkeys-lru".into(),
        "maxclients" => state.maxclients().to_string(),
        "requirepass" => state.requirepass().unwrap_or_default(),
        "save" => String::new(),
        "appendonly" => "no".into(),
        "databases" => "1".into(),
        "timeout" => "0".into(),
        "proto-max-bulk-len" => s.proto_max_bulk_len.to_string(),
        "io-threads" => s.threads.to_string(),
        "client-output-buffer-limit" => {
            format!(
                "normal {0} {0} 0 slave 0 0 0 pubsub 0 0 0",
                s.client_output_limit
            )
        }
        "dir" => path
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        "dbfilename" => path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        "hz" => "10".into(),
        _ => String::new(),
    }
}

fn get(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // Parameter names match case-insensitively, as in Redis.
    let patterns: Vec<Vec<u8>> = args
        .from(2)
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    let matched: Vec<&str> = PARAMS
        .iter()
        .copied()
        .filter(|p| patterns.iter().any(|pat| glob_match(pat, p.as_bytes())))
        .collect();
    ctx.out.map(matched.len());
    for p in matched {
        ctx.out.bulk(p.as_bytes());
        ctx.out.bulk(value(ctx.state, p).as_bytes());
    }
    Ok(())
}

/// A validated CONFIG SET change, applied only once all pairs validate.
enum Change {
    RequirePass(Option<String>),
    MaxClients(usize),
}

fn failed(param: &[u8], why: &str) -> CmdError {
    CmdError::quoting(
        "ERR CONFIG SET failed (possibly related to argument '",
        param,
        &format!("') - {why}"),
    )
}

fn validate(param: &[u8], v: &[u8]) -> Result<Change, CmdError> {
    let name = String::from_utf8_lossy(param).to_ascii_lowercase();
    match name.as_str() {
        "requirepass" => {
            let pass = String::from_utf8(v.to_vec())
                .map_err(|_| failed(param, "password must be UTF-8"))?;
            Ok(Change::RequirePass((!pass.is_empty()).then_some(pass)))
        }
        "maxclients" => match crate::resp::num::parse_i64(v) {
            Some(n) if n >= 1 => Ok(Change::MaxClients(n as usize)),
            Some(_) => Err(failed(
                param,
                "argument must be between 1 and 9223372036854775807 inclusive",
            )),
            None => Err(failed(param, "argument couldn't be parsed into an integer")),
        },
        n if PARAMS.contains(&n) => Err(failed(
            param,
            "not settable at runtime in Citadel; change the configuration and restart",
        )),
        _ => Err(CmdError::quoting(
            "ERR Unknown option or number of arguments for CONFIG SET - '",
            param,
            "'",
        )),
    }
}

fn set(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() & 1 == 1 {
        return Err(CmdError::Arity("config|set"));
    }
    let changes = (2..args.len())
        .step_by(2)
        .map(|i| validate(args.get(i), args.get(i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    for change in changes {
        match change {
            Change::RequirePass(p) => ctx.state.set_requirepass(p),
            Change::MaxClients(n) => ctx.state.set_maxclients(n),
        }
    }
    ctx.out.ok();
    Ok(())
}

fn resetstat(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ctx.state.reset_stats();
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let lines: &[&str] = &[
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value> (requirepass, maxclients).",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "HELP",
        "    Print this help.",
    ];
    reply_lines(&mut ctx.out, lines);
    Ok(())
}
