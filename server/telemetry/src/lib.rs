//! Citadel's stats region: a small file beside the cache file (default
//! `<cache-file>.stats`) that the server writes with relaxed atomics and
//! any process reads live (`citadel-top`, the `/metrics` exporter). It
//! survives a restart: a server reopening a file of the same layout and
//! geometry keeps counting from where the last one stopped.
//!
//! # Recording API (for the server's code)
//!
//! At startup the server opens the region and hands each thread its slot:
//!
//! ```no_run
//! # use citadel_telemetry::*;
//! # let path = std::path::Path::new("/dev/shm/x.stats");
//! let geometry = Geometry { cores: 4, commands: 512, hot_keys: 32, info_bytes: 64 << 10 };
//! let (region, _opened) = Region::open(path, geometry).unwrap();
//! let core0: SlotStats = region.core(0).unwrap(); // thread 0 only
//! let other: SlotStats = region.shared();          // any other thread
//! // Once, at startup: names the exposition shows.
//! region.name_command(3, "get");
//! region.name_priority(0, "admin");
//! let queueing = region.reason("queueing delay").unwrap();
//! // Per request, from thread 0's loop (relaxed load+store, no lock):
//! core0.command(3, 1_500, false);
//! core0.shed(Layer::Core, queueing, 2);
//! core0.set_gauge(CoreGauge::QueueDelayNanos, 12_000_000);
//! // From one publisher thread, about once a second:
//! region.publish_hot_keys(&[(b"user:42".as_slice(), 1250.0)]);
//! region.publish_info("# Stats\r\nkeyspace_hits:10\r\n");
//! ```
//!
//! * **Shed counts** (overload protection): `SlotStats::shed(layer,
//!   reason, priority)` on the shedding thread's own slot (or
//!   `Region::shared()` off the server threads). Layers are the five of
//!   the `-OVERLOAD <layer> <reason>` error; reasons are up to `REASONS`
//!   names claimed once at startup with `Region::reason`; priorities are
//!   0 (highest) to `PRIORITIES - 1`, named with `Region::name_priority`.
//! * **Per-core gauges**: `SlotStats::set_gauge(CoreGauge::QueueDelayNanos
//!   | CpuBudgetPermille, v)` from the core's loop.
//! * **Hot keys**: `Region::publish_hot_keys(&[(key, rate)])`, hottest
//!   first, from one thread (the server's publisher), e.g. from
//!   `HotKeys::top(k)`.
//! * **Plugin calls**: `Region::plugins(&[(plugin, versions)])` once at
//!   startup gives each plugin its `PluginEntry` (up to `PLUGINS` plugins
//!   of up to `PLUGIN_VERSIONS` versions; the rest are not recorded and
//!   counted in the header); per call, from any thread, `enter(version)`,
//!   then `ended(version, nanos, CallEnd)` (or `leave` when the call is
//!   sent elsewhere), and `refused()` for a call shed before a version
//!   was chosen. Relaxed atomic adds; readers derive p50/p99 from the
//!   buckets (`VersionTotals::quantile_nanos`).
//! * **Everything else** INFO shows reaches the region as the INFO text the
//!   publisher copies in once a second (`Region::publish_info`); the
//!   exposition turns its numeric fields into gauges.
//!
//! Readers: [`Reader::open`] (read-only mapping) or [`Region::snapshot`],
//! then [`exposition::render`] for Prometheus text format 0.0.4.

pub mod exposition;
mod family;
mod info_metrics;
pub mod layout;
mod plugin_metrics;
mod plugins;
mod reader;
mod region;
mod slot;
mod snapshot;
mod view;
mod words;

pub use layout::{
    CoreGauge, Geometry, Layer, LAYOUT_VERSION, PLUGINS, PLUGIN_VERSIONS, PRIORITIES, REASONS,
};
pub use plugins::{CallEnd, PluginEntry};
pub use reader::{ReadError, Reader};
pub use region::{OpenError, Opened, Region};
pub use slot::{Reason, SlotStats};
pub use snapshot::{
    quantile_of, CommandTotals, CoreTotals, HotKey, PluginTotals, ShedCount, Snapshot,
    VersionTotals,
};
pub use view::LayoutError;
