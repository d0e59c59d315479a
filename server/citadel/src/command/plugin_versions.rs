//! PLUGIN WEIGHT name version pct | PROMOTE name version | ROLLBACK name
//! (gray release: see `citadel_supervisor::Traffic`), and what PLUGIN INFO
//! and INFO plugins show of each version.

use std::sync::atomic::Ordering::Relaxed;

use citadel_supervisor::{Hub, PluginShared, Traffic, WeightError};

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};

/// The plugin named by argument 2, and the hub.
fn plugin<'a>(ctx: &'a Ctx<'_>, args: &Args<'_>) -> Result<(&'a Hub, usize), CmdError> {
    let name = args.get(2);
    let hub = ctx
        .state
        .plugins
        .hub()
        .ok_or(CmdError::Static("ERR no plugins are configured"))?;
    let index = hub
        .find(name)
        .ok_or_else(|| CmdError::quoting("ERR no such plugin '", name, "'"))?;
    Ok((hub, index))
}

fn weight_error(plugin: &PluginShared, e: WeightError) -> CmdError {
    CmdError::Text(format!("ERR plugin '{}': {e}", plugin.config.name))
}

/// Runs one weight change of the plugin named by argument 2.
fn change(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    op: impl FnOnce(&Traffic) -> Result<(), WeightError>,
) -> CmdResult {
    let (hub, index) = plugin(ctx, args)?;
    hub.change_weights(index, op)
        .map_err(|e| weight_error(&hub.plugins[index], e))?;
    ctx.out.ok();
    Ok(())
}

pub(super) fn weight(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (version, pct) = (args.get(3), args.get(4));
    let pct = std::str::from_utf8(pct)
        .ok()
        .and_then(|t| t.parse::<u32>().ok())
        .ok_or(CmdError::Static("ERR weight must be an integer 0-10000"))?;
    change(ctx, &args, |t| t.set_weight(t.find(version)?, pct))
}

pub(super) fn promote(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let version = args.get(3);
    change(ctx, &args, |t| t.promote(t.find(version)?))
}

pub(super) fn rollback(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    change(ctx, &args, Traffic::rollback)
}

/// `weight=90 calls=... errors=... timeouts=... in_flight=... p50_us=...
/// p99_us=...` of version `v` (`sep` between fields), then, when the stats
/// region has the version, its `lifetime_*` counts (the same events,
/// counted across restarts).
pub(super) fn version_line(p: &PluginShared, v: usize, sep: &str) -> String {
    let version = &p.traffic.versions[v];
    let s = &version.stats;
    let mut fields = vec![
        ("weight", version.weight.load(Relaxed).to_string()),
        ("state", version_state(p, v).to_string()),
        ("calls", s.processed.load(Relaxed).to_string()),
        ("errors", s.errors.load(Relaxed).to_string()),
        ("timeouts", s.timeouts.load(Relaxed).to_string()),
        ("in_flight", s.in_flight.load(Relaxed).to_string()),
        ("p50_us", s.latency.quantile(0.50).to_string()),
        ("p99_us", s.latency.quantile(0.99).to_string()),
    ];
    if let Some(t) = p.shm.get().and_then(|e| e.totals(v)) {
        fields.push(("lifetime_calls", t.calls.to_string()));
        fields.push(("lifetime_errors", t.errors.to_string()));
        fields.push(("lifetime_timeouts", t.timeouts.to_string()));
    }
    let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(sep)
}

/// The state of version `v`'s first instance taking calls (they move
/// together), or of its first if none does.
fn version_state(p: &PluginShared, v: usize) -> &'static str {
    let per = p.config.per_version;
    let slots = p.instances.get(v * per..(v + 1) * per).unwrap_or(&[]);
    slots
        .iter()
        .find(|i| i.is_active())
        .or(slots.first())
        .map_or("?", |i| i.state().name())
}

/// PLUGIN INFO's gray-release fields: one `version:<name>` per version.
pub(super) fn fields(p: &PluginShared) -> Vec<(String, String)> {
    let t = &p.traffic;
    let mut out = vec![
        (
            "balance".to_string(),
            citadel_settings::SettingValue::render(&p.config.balance),
        ),
        (
            "baseline".to_string(),
            t.versions[t.baseline()].name.clone(),
        ),
        (
            "rollbacks".to_string(),
            t.rollbacks.load(Relaxed).to_string(),
        ),
        (
            "last_rollback".to_string(),
            t.last_rollback
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        ),
    ];
    for (v, version) in t.versions.iter().enumerate() {
        out.push((format!("version:{}", version.name), version_line(p, v, " ")));
    }
    out
}
