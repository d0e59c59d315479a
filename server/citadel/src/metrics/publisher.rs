//! Once a second, the server's INFO text (every section but the
//! per-command ones, which the region counts itself) goes into the
//! region: what `/metrics` and `citadel-top` show of memory, hits, plugins,
//! pipelines, read-through and anything a later INFO section adds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use citadel_telemetry::Region;

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
