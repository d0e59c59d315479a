//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP. The parameters are
//! Citadel's settings (`citadel_settings::server`: CONFIG SET changes the
//! live ones, parsed and checked by their definitions; CONFIG REWRITE
//! writes the ones in effect into the `--config` file,
//! `citadel_settings::rewrite`), plus the Redis parameters clients and
//! tools ask for, answered with what Citadel does.

use std::path::Path;

use citadel_settings::{server as setting, AnySetting};

use super::args::Args;
use super::context::{reply_lines, Ctx};
use super::error::{CmdError, CmdResult};
use super::table::{keyless, CommandDef, Handler};
use crate::glob::glob_match;
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
    sub("config|rewrite", 2, "Persists the effective configuration to file.", rewrite),
    keyless("config|help", 2, &["loading", "stale"], "server", "2.0.0", "Returns helpful text about the different subcommands.", help),
];

/// Redis parameters that are not Citadel settings, answered for clients
/// and tools that ask (read-only).
const REDIS_PARAMS: &[&str] = &[
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
    "list-compress-depth",
];

/// Redis's names of settings Citadel calls otherwise: the older names
/// Redis 7 still answers to, and Redis's name where Citadel's says what
/// its setting does (CONFIG GET shows both, as Redis does for its own).
const ALIASES: &[(&str, &str)] = &[
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("busy-reply-threshold", "busy-script-time"),
    ("lua-time-limit", "busy-script-time"),
];

/// The setting `name` (lowercase) names, under its own name or an alias.
fn find_setting(name: &str) -> Option<&'static dyn AnySetting> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, canonical)| canonical);
    setting::TABLE.find(name)
}

fn redis_value(state: &ServerState, param: &str) -> String {
    let path = state.cache.path();
    match param {
        "save" => String::new(),
        "appendonly" => "no".into(),
        "databases" => "1".into(),
        "timeout" => "0".into(),
        "proto-max-bulk-len" => state.limits.proto_max_bulk_len.to_string(),
        "io-threads" => state.threads.to_string(),
        "client-output-buffer-limit" => format!(
            "normal {0} {0} 0 slave 0 0 0 pubsub 0 0 0",
            state.limits.client_output_limit
        ),
        "dir" => path
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        "dbfilename" => path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        "hz" => "10".into(),
        // List pages are not compressed.
        "list-compress-depth" => "0".into(),
        _ => String::new(),
    }
}

/// A setting's value as CONFIG GET shows it: what is in effect (the thread
/// count and cache file chosen at start-up rather than "default").
fn setting_value(state: &ServerState, s: &dyn AnySetting) -> String {
    match s.name() {
        "threads" => state.threads.to_string(),
        "cache-file" => state.cache.path().display().to_string(),
        // Redis answers its canonical letters ("KA" reads back "AK").
        "notify-keyspace-events" => {
            let text = state.settings.get(&setting::NOTIFY_KEYSPACE_EVENTS);
            citadel_settings::key_events::parse(&text)
                .map_or(text, citadel_settings::key_events::render)
        }
        _ => state.settings.render(s),
    }
}

fn get(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // Parameter names match case-insensitively, as in Redis.
    let patterns: Vec<Vec<u8>> = args
        .from(2)
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    let wanted = |name: &str| patterns.iter().any(|p| glob_match(p, name.as_bytes()));
    let mut pairs: Vec<(&str, String)> = setting::TABLE
        .settings
        .iter()
        .filter(|s| wanted(s.name()))
        .map(|s| (s.name(), setting_value(ctx.state, *s)))
        .collect();
    pairs.extend(
        ALIASES
            .iter()
            .filter(|(alias, _)| wanted(alias))
            .filter_map(|(alias, canonical)| {
                let s = setting::TABLE.find(canonical)?;
                Some((*alias, setting_value(ctx.state, s)))
            }),
    );
    pairs.extend(
        REDIS_PARAMS
            .iter()
            .filter(|p| wanted(p))
            .map(|p| (*p, redis_value(ctx.state, p))),
    );
    ctx.out.map(pairs.len());
    for (name, value) in pairs {
        ctx.out.bulk(name.as_bytes());
        ctx.out.bulk(value.as_bytes());
    }
    Ok(())
}

fn failed(param: &[u8], why: &str) -> CmdError {
    CmdError::quoting(
        "ERR CONFIG SET failed (possibly related to argument '",
        param,
        &format!("') - {why}"),
    )
}

/// Parameters Redis 7.0 too refuses to change at runtime, whatever the
/// value (IMMUTABLE_CONFIG): its error, as scripts written for Redis
/// expect (Citadel's settings among them, and Redis's process options).
const REDIS_IMMUTABLE: &[&str] = &[
    "unixsocket",
    "unixsocketperm",
    "aclfile",
    "databases",
    "enable-debug-command",
    "cluster-enabled",
    "daemonize",
    "supervised",
    "pidfile",
    "logfile",
];

const NOT_LIVE: &str = "not settable at runtime in Citadel; change the configuration and restart";

/// The setting `param` names and the text to set it to, checked; None for
/// a Redis parameter or a setting fixed at startup set to the value
/// Citadel already has (`save ""`, `appendonly no`: scripts written for
/// Redis send them), which changes nothing.
fn validate(
    state: &ServerState,
    param: &[u8],
    value: &[u8],
) -> Result<Option<(&'static dyn AnySetting, String)>, CmdError> {
    let name = String::from_utf8_lossy(param).to_ascii_lowercase();
    let Some(s) = find_setting(&name) else {
        if REDIS_IMMUTABLE.contains(&name.as_str()) {
            return Err(failed(param, "can't set immutable config"));
        }
        if REDIS_PARAMS.contains(&name.as_str()) {
            if redis_value(state, &name).as_bytes() == value {
                return Ok(None);
            }
            return Err(failed(param, NOT_LIVE));
        }
        return Err(CmdError::quoting(
            "ERR Unknown option or number of arguments for CONFIG SET - '",
            param,
            "'",
        ));
    };
    if !s.is_live() {
        if REDIS_IMMUTABLE.contains(&s.name()) {
            return Err(failed(param, "can't set immutable config"));
        }
        // The value in effect changes nothing: as for Redis's parameters
        // above (a CONFIG GET / CONFIG SET round trip passes).
        if setting_value(state, s).as_bytes() == value {
            return Ok(None);
        }
        return Err(failed(param, NOT_LIVE));
    }
    let text = std::str::from_utf8(value).map_err(|_| failed(param, "argument must be UTF-8"))?;
    let text = if s.name() == setting::MAXMEMORY.name {
        memory_cap_text(state, text).map_err(|why| failed(param, &why))?
    } else {
        text.to_owned()
    };
    state
        .settings
        .validate_live(s, &text)
        .map_err(|why| failed(param, &why))?;
    Ok(Some((s, text)))
}

/// `maxmemory` at run time caps the memory in use below the cache file's
/// size (the file cannot grow while mapped); 0, Redis's "no limit", lifts
/// the cap: the size the file was made for.
fn memory_cap_text(state: &ServerState, text: &str) -> Result<String, String> {
    let file = state.cache.file_size();
    let Some(bytes) = citadel_settings::parse_size(text) else {
        return Err(format!("argument must be a memory value, not '{text}'"));
    };
    match bytes {
        0 => Ok(file.to_string()),
        b if b > file => Err(format!(
            "the cache file was made for {file} bytes and cannot grow while mapped; \
             restart with the larger maxmemory and --fresh (its keys are lost)"
        )),
        _ => Ok(text.to_owned()),
    }
}

/// A parameter named twice is Redis's error, before any value is looked
/// at (a name and its alias are two parameters to Redis 7.0: the later
/// one wins).
fn refuse_duplicates(args: Args<'_>) -> Result<(), CmdError> {
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for i in (2..args.len()).step_by(2) {
        let name = args.get(i).to_ascii_lowercase();
        if seen.contains(&name) {
            return Err(failed(args.get(i), "duplicate parameter"));
        }
        seen.push(name);
    }
    Ok(())
}

/// Every pair is validated before any is applied, as Redis does.
fn set(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() & 1 == 1 {
        return Err(CmdError::Arity("config|set"));
    }
    refuse_duplicates(args)?;
    let changes = (2..args.len())
        .step_by(2)
        .map(|i| validate(ctx.state, args.get(i), args.get(i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    for change in changes {
        let Some((s, text)) = change else { continue };
        if let Err(why) = ctx.state.settings.set_live(s, &text) {
            return Err(failed(s.name().as_bytes(), &why));
        }
        tracing::info!(setting = s.name(), "changed by CONFIG SET");
    }
    ctx.state.settings_changed();
    ctx.out.ok();
    Ok(())
}

fn resetstat(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ctx.state.reset_stats();
    ctx.out.ok();
    Ok(())
}

/// CONFIG REWRITE: the `--config` file brought up to the settings in
/// effect. A small file written on the calling thread, as Redis does; it
/// is replaced atomically, so a failure leaves the old file whole.
fn rewrite(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let Some(path) = ctx.state.config_file.as_deref() else {
        return Err(CmdError::Static(
            "ERR The server is running without a config file",
        ));
    };
    let written = citadel_settings::rewrite::rewrite_file(Path::new(path), &ctx.state.settings);
    if let Err(e) = written {
        tracing::warn!(file = path, error = %e, "CONFIG REWRITE failed");
        return Err(CmdError::Text(format!("ERR Rewriting config file: {e}")));
    }
    tracing::info!(file = path, "CONFIG REWRITE executed with success");
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let lines: &[&str] = &[
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value> (the live settings: requirepass, maxclients).",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
        "HELP",
        "    Print this help.",
    ];
    reply_lines(&mut ctx.out, lines);
    Ok(())
}
