//! PLUGIN LIST | INFO name | CALL name payload [KEY key] | RELOAD [name] |
//! WEIGHT / PROMOTE / ROLLBACK (`plugin_versions.rs`) | HELP, and the INFO
//! `plugins` section.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use citadel_proto::Format;

use super::args::Args;
use super::context::{reply_lines, Ctx};
use super::error::{CmdError, CmdResult};
use super::pending::call_error;
use super::plugin_versions;
use super::table::{keyless, CommandDef, Handler};
use crate::plugin::{Outcome, PluginId};
use crate::state::ServerState;
use citadel_supervisor::{Hub, PluginShared};

const fn sub(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    summary: &'static str,
    handler: Handler,
) -> CommandDef {
    keyless(name, arity, flags, "server", "0.1.0", summary, handler)
}

const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];
const READ: &[&str] = &["noscript", "loading", "stale"];

#[rustfmt::skip]
pub static SUBCOMMANDS: &[CommandDef] = &[
    sub("plugin|list", 2, READ, "Lists the configured plugins with their state.", list),
    sub("plugin|info", 3, READ, "Returns a plugin's state, process, cores and call statistics.", info),
    sub("plugin|call", -4, &["noscript", "no_multi"], "Sends a payload to a plugin and returns its reply.", call),
    sub("plugin|reload", -2, ADMIN, "Hot-upgrades a plugin (or all): the new process takes over its rings.", reload),
    sub("plugin|weight", 5, ADMIN, "Sets the share of calls one version of a plugin gets.", plugin_versions::weight),
    sub("plugin|promote", 4, ADMIN, "Gives one version of a plugin every call; the others drain and stop.", plugin_versions::promote),
    sub("plugin|rollback", 3, ADMIN, "Restores a plugin's version weights from before the last change.", plugin_versions::rollback),
    sub("plugin|help", 2, READ, "Returns helpful text about the different subcommands.", help),
];

fn hub<'a>(ctx: &'a Ctx<'_>) -> Option<&'a std::sync::Arc<Hub>> {
    ctx.state.plugins.hub()
}

fn no_such(name: &[u8]) -> CmdError {
    CmdError::quoting("ERR no such plugin '", name, "'")
}

fn list(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let lines: Vec<String> = hub(ctx)
        .map(|h| h.plugins.iter().map(|p| summary(p)).collect())
        .unwrap_or_default();
    ctx.out.array(lines.len());
    for l in &lines {
        ctx.out.bulk(l.as_bytes());
    }
    Ok(())
}

/// `name=echo state=running pid=42 cores=3 ...` (PLUGIN LIST, one per plugin).
fn summary(p: &PluginShared) -> String {
    fields(p)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every field PLUGIN INFO reports, in order.
fn fields(p: &PluginShared) -> Vec<(&'static str, String)> {
    let s = &p.stats;
    vec![
        ("name", p.config.name.clone()),
        ("state", p.states()),
        ("pid", p.pids()),
        ("exec", p.config.exec.display().to_string()),
        ("placement", p.config.placement.name().to_string()),
        ("cores", p.cores_text()),
        ("instances", p.active_instances().to_string()),
        ("instances_min", p.config.running.min.to_string()),
        ("instances_max", p.config.running.max.to_string()),
        ("last_change", p.last_change()),
        ("restarts", p.restarts().to_string()),
        ("reloads", p.reloads().to_string()),
        ("detached", p.detached().to_string()),
        ("in_flight", s.in_flight.load(Relaxed).to_string()),
        ("processed", s.processed.load(Relaxed).to_string()),
        ("errors", s.errors.load(Relaxed).to_string()),
        ("poisoned", s.poisoned.load(Relaxed).to_string()),
        ("timeouts", s.timeouts.load(Relaxed).to_string()),
        ("rejected", s.rejected.load(Relaxed).to_string()),
        ("dropped_replies", s.dropped.load(Relaxed).to_string()),
        ("p50_us", s.latency.quantile(0.50).to_string()),
        ("p99_us", s.latency.quantile(0.99).to_string()),
        ("ring_depth_bytes", p.ring_depth().to_string()),
        ("max_inflight", p.config.max_inflight.to_string()),
        ("timeout_ms", p.config.timeout.as_millis().to_string()),
    ]
}

fn info(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let name = args.get(2);
    let plugin = hub(ctx)
        .and_then(|h| h.find(name).map(|i| h.plugins[i].clone()))
        .ok_or_else(|| no_such(name))?;
    let mut fields: Vec<(String, String)> = fields(&plugin)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    fields.extend(plugin_versions::fields(&plugin));
    ctx.out.map(fields.len());
    for (k, v) in &fields {
        ctx.out.bulk(k.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
    Ok(())
}

fn call(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let name = args.get(2);
    let plugin = ctx.thread.plugins.find(name).ok_or_else(|| no_such(name))?;
    let key = match args.len() {
        4 => None,
        6 if args.get(4).eq_ignore_ascii_case(b"KEY") => Some(args.get(5)),
        _ => return Err(CmdError::Syntax),
    };
    ctx.call_plugin(plugin, Format::Raw, key, args.get(3), call_done)
}

/// PLUGIN CALL's reply: the plugin's payload as a bulk string.
fn call_done(ctx: &mut Ctx<'_>, plugin: PluginId, outcome: Outcome) -> CmdResult {
    match outcome {
        Outcome::Reply { payload, .. } => {
            ctx.out.bulk(&payload);
            Ok(())
        }
        Outcome::Failed(e) => Err(call_error(ctx.thread.plugins.name(plugin), &e)),
        Outcome::Pipeline(_) => Err(CmdError::Static(
            "ERR internal error: pipeline results for a plugin call",
        )),
    }
}

fn reload(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let hub = hub(ctx).ok_or(CmdError::Static("ERR no plugins are configured"))?;
    let index = match args.len() {
        3 => Some(hub.find(args.get(2)).ok_or_else(|| no_such(args.get(2)))?),
        _ => None,
    };
    hub.reload(index)
        .map_err(|e| CmdError::Text(format!("ERR {e}")))?;
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    reply_lines(
        &mut ctx.out,
        &[
            "PLUGIN <subcommand> [<arg> ...]. Subcommands are:",
            "LIST",
            "    One line per plugin: state, pid, cores, restarts, in-flight, processed, latency.",
            "INFO <name>",
            "    Every field of one plugin.",
            "CALL <name> <payload> [KEY <key>]",
            "    Send <payload> to the plugin and return its reply; with KEY, calls naming",
            "    the same key go to the same version of the plugin.",
            "RELOAD [<name>]",
            "    Hot upgrade: start the plugin's binary again, the old process finishes first.",
            "WEIGHT <name> <version> <weight>",
            "    Gray release: the share of calls <version> gets (relative to the others).",
            "PROMOTE <name> <version>",
            "    <version> gets every call; the other versions drain and stop.",
            "ROLLBACK <name>",
            "    Back to the weights before the last change (manual or automatic).",
            "HELP",
            "    Print this help.",
        ],
    );
    Ok(())
}

/// INFO plugins: the core plan, then one line per plugin.
pub fn info_section(out: &mut String, state: &ServerState) {
    let Some(hub) = state.plugins.hub() else {
        let _ = write!(out, "plugins:0\r\n");
        return;
    };
    let _ = write!(out, "plugins:{}\r\n", hub.plugins.len());
    let _ = write!(out, "core_plan:{}\r\n", hub.core_plan);
    for p in &hub.plugins {
        let values: Vec<String> = fields(p)
            .into_iter()
            .skip(1)
            .filter(|(k, _)| *k != "exec")
            .map(|(k, v)| format!("{k}={}", v.replace(',', ";")))
            .collect();
        let _ = write!(out, "plugin_{}:{}\r\n", p.config.name, values.join(","));
        if p.traffic.versions.len() > 1 {
            for (v, version) in p.traffic.versions.iter().enumerate() {
                let line = plugin_versions::version_line(p, v, ",");
                let _ = write!(
                    out,
                    "plugin_{};version={}:{line}\r\n",
                    p.config.name, version.name
                );
            }
        }
    }
}
