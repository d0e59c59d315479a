//! Once a second, the server's INFO text (every section but the
//! per-command ones, which the region counts itself) goes into the
//! region: what `/metrics` and `citadel-top` show of memory, hits, plugins,
//! pipelines, read-through and anything a later INFO section adds; with
//! it the hot-key detector's top and each core's queueing delay. (Shed
//! requests are counted into the region as they happen: `OverloadStats`.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use citadel_telemetry::{CoreGauge, Region};

use crate::state::ServerState;

const PERIOD: Duration = Duration::from_secs(1);
/// How often the thread looks at the stop flag.
const TICK: Duration = Duration::from_millis(50);

/// INFO's per-command sections are left out (the region has them).
fn wanted(section: &str, _default: bool) -> bool {
    !matches!(section, "commandstats" | "latencystats")
}

pub fn publish(region: &Region, state: &ServerState) {
    region.publish_info(&crate::command::info_text(state, wanted));
    let top = state.hotkeys.top(region.geometry().hot_keys);
    let keys: Vec<(&[u8], f64)> = top.iter().map(|k| (k.key.as_slice(), k.rate)).collect();
    region.publish_hot_keys(&keys);
    // Each core's standing queueing delay, as admission last measured it
    // (the region's gauge words have no other writer).
    let overload = state.overload.stats.snapshot();
    for (core, [delay_us, ..]) in overload.cores.iter().enumerate() {
        if let Some(slot) = region.core(core) {
            slot.set_gauge(CoreGauge::QueueDelayNanos, delay_us.saturating_mul(1000));
        }
    }
}

pub fn spawn(
    region: Arc<Region>,
    state: Arc<ServerState>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("citadel-stats".into())
        .spawn(move || {
            let mut waited = PERIOD;
            while !stop.load(Ordering::Relaxed) {
                if waited >= PERIOD {
                    publish(&region, &state);
                    waited = Duration::ZERO;
                }
                std::thread::sleep(TICK);
                waited += TICK;
            }
        })
        .expect("spawn the stats publisher thread")
}
