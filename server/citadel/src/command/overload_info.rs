//! INFO's `# Overload` section: the settings in force, shed counts by
//! layer, reason and rank, and each core's admission state (from
//! `OverloadStats::snapshot`).

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use crate::overload::{Layer, Rank};
use crate::state::ServerState;
use citadel_settings::overload as setting;

pub fn section(out: &mut String, state: &ServerState) {
    let snap = state.overload.stats.snapshot();
    let mut line = |key: &str, value: &dyn std::fmt::Display| {
        let _ = write!(out, "{key}:{value}\r\n");
    };
    let target = state.settings.get(&setting::OVERLOAD_DELAY_TARGET_US);
    line("overload_delay_target_us", &target);
    let per_address = state.settings.get(&setting::MAXCLIENTS_PER_ADDRESS);
    line("overload_maxclients_per_address", &per_address);
    line(
        "overload_accept_rate",
        &state.settings.get(&setting::ACCEPT_RATE),
    );
    line("shed_total", &snap.total());
    // Connections held with their refusals (`citadel_net`'s hold.rs).
    let holds = |t: &crate::stats::ThreadStats| t.net.holds.load(Relaxed);
    line(
        "shed_holds",
        &state.thread_stats.iter().map(|t| holds(t)).sum::<u64>(),
    );
    // Connections a core took from a stalled core's listener (`citadel_net`'s
    // relief.rs).
    let relieved = |t: &crate::stats::ThreadStats| t.net.relieved.load(Relaxed);
    line(
        "stalled_core_accepts",
        &state.thread_stats.iter().map(|t| relieved(t)).sum::<u64>(),
    );
    for layer in Layer::ALL {
        line(&format!("shed_{}", layer.as_str()), &snap.by_layer(layer));
    }
    for (reason, by_rank) in &snap.shed {
        let total: u64 = by_rank.iter().sum();
        line(
            &format!("shed_{}_{}", reason.layer().as_str(), reason.name()),
            &total,
        );
    }
    for rank in Rank::all() {
        let n: u64 = snap.shed.iter().map(|(_, r)| r[rank.index()]).sum();
        line(&format!("shed_rank_{}", rank.name()), &n);
    }
    for (i, [delay, max_delay, max_turn, overloaded]) in snap.cores.iter().enumerate() {
        line(
            &format!("core{i}"),
            &format_args!(
                "delay_us={delay},max_delay_us={max_delay},max_turn_us={max_turn},overloaded={overloaded}"
            ),
        );
    }
    // Admitted requests by queueing delay, cumulative: `lt<µs>=count` for
    // each non-empty bucket (a bench diffs two readings for percentiles).
    for (i, buckets) in snap.admitted.iter().enumerate() {
        let mut text = String::new();
        for (b, n) in buckets.iter().enumerate().filter(|(_, n)| **n > 0) {
            let sep = if text.is_empty() { "" } else { "," };
            let _ = write!(text, "{sep}lt{}={n}", 1u64 << b);
        }
        line(&format!("core{i}_admitted_delay"), &text);
    }
}
