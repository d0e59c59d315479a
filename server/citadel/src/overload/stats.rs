//! Overload protection's counters, all in one place: requests shed by
//! layer, reason and priority rank, and each core's admission state. Every
//! layer bumps them with one relaxed atomic add; readers (INFO `# Overload`,
//! the metrics exporter) take a [`OverloadStats::snapshot`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use citadel_telemetry::{Region, SlotStats};

use super::rank::{Rank, RANKS};

/// The layer that refused: the first word after `OVERLOAD` in the reply
/// (the stats region's own enum, so counting there needs no mapping).
pub use citadel_telemetry::Layer;

/// Why a request (or a connection) was refused; each belongs to one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// maxclients reached.
    MaxClients,
    /// maxclients-per-address reached for the peer's address.
    PerAddress,
    /// accept-rate exceeded.
    AcceptRate,
    /// The core's queueing delay is over its target.
    QueueingDelay,
    /// A client group's token bucket is empty.
    ClientQuota,
    /// A key prefix's token bucket is empty.
    PrefixQuota,
    /// A plugin's request ring is full.
    PluginFull,
    /// A plugin's per-thread in-flight limit is reached.
    PluginLimit,
    /// A read-through loader's limit is reached or its breaker is open.
    LoaderLimit,
    /// A key took its writes for this second (`hotkeys-write-limit`).
    KeyWriteRate,
}

pub const REASONS: [Reason; 10] = [
    Reason::MaxClients,
    Reason::PerAddress,
    Reason::AcceptRate,
    Reason::QueueingDelay,
    Reason::ClientQuota,
    Reason::PrefixQuota,
    Reason::PluginFull,
    Reason::PluginLimit,
    Reason::LoaderLimit,
    Reason::KeyWriteRate,
];

impl Reason {
    pub fn layer(self) -> Layer {
        match self {
            Reason::MaxClients | Reason::PerAddress | Reason::AcceptRate => Layer::Connection,
            Reason::QueueingDelay => Layer::Core,
            Reason::ClientQuota | Reason::PrefixQuota => Layer::Quota,
            Reason::PluginFull | Reason::PluginLimit | Reason::LoaderLimit => Layer::Downstream,
            Reason::KeyWriteRate => Layer::Key,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Reason::MaxClients => "maxclients",
            Reason::PerAddress => "per_address",
            Reason::AcceptRate => "accept_rate",
            Reason::QueueingDelay => "queueing_delay",
            Reason::ClientQuota => "client_quota",
            Reason::PrefixQuota => "prefix_quota",
            Reason::PluginFull => "plugin_full",
            Reason::PluginLimit => "plugin_limit",
            Reason::LoaderLimit => "loader_limit",
            Reason::KeyWriteRate => "key_write_rate",
        }
    }
}

/// One core's admission state as last published (once per control interval).
#[derive(Debug, Default)]
pub struct CoreGauges {
    /// The smallest queueing delay seen over the last interval (the standing
    /// queue CoDel watches), in microseconds.
    pub delay_us: AtomicU64,
    /// The largest seen over the last interval.
    pub max_delay_us: AtomicU64,
    /// The longest loop turn (CPU spent between two waits) of the interval.
    pub max_turn_us: AtomicU64,
    /// 1 while the core sheds (its last interval's delay stood over target).
    pub overloaded: AtomicU64,
    /// Admitted requests by their queueing delay (log2 buckets of µs, see
    /// [`delay_bucket`]), counted since start; added once per interval.
    pub admitted: [AtomicU64; DELAY_BUCKETS],
}

/// Buckets of the admitted-delay histogram: bucket `b` holds delays under
/// `2^b` µs (and at least `2^(b-1)`); the last one holds the rest (> 4 s).
pub const DELAY_BUCKETS: usize = 24;

/// The histogram bucket of a delay of `us` microseconds.
#[inline]
pub fn delay_bucket(us: u64) -> usize {
    ((u64::BITS - us.leading_zeros()) as usize).min(DELAY_BUCKETS - 1)
}

/// Every overload counter of the server.
#[derive(Debug)]
pub struct OverloadStats {
    /// Shed requests by reason and rank (connection refusals count under
    /// the rank of a normal read: a connection has no command yet).
    shed: [[AtomicU64; RANKS]; REASONS.len()],
    cores: Vec<CoreGauges>,
    /// The stats region's shared slot and its reason ids, once attached:
    /// every shed is counted there too (`citadel-top`, `/metrics`).
    region: OnceLock<(SlotStats, Vec<citadel_telemetry::Reason>)>,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Default)]
pub struct OverloadSnapshot {
    /// (reason, counts by rank).
    pub shed: Vec<(Reason, [u64; RANKS])>,
    /// Per core: (standing delay us, max delay us, longest turn us, overloaded).
    pub cores: Vec<[u64; 4]>,
    /// Per core: admitted requests by delay bucket ([`delay_bucket`]).
    pub admitted: Vec<[u64; DELAY_BUCKETS]>,
}

impl OverloadSnapshot {
    pub fn total(&self) -> u64 {
        self.shed.iter().flat_map(|(_, r)| r.iter()).sum()
    }
    pub fn by_layer(&self, layer: Layer) -> u64 {
        self.shed
            .iter()
            .filter(|(r, _)| r.layer() == layer)
            .flat_map(|(_, r)| r.iter())
            .sum()
    }
}

impl OverloadStats {
    pub fn new(cores: usize) -> OverloadStats {
        OverloadStats {
            shed: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            cores: (0..cores).map(|_| CoreGauges::default()).collect(),
            region: OnceLock::new(),
        }
    }

    /// Counts every shed from now on into `region` as well (its shared
    /// slot: any thread sheds), under the reasons' names.
    pub fn attach(&self, region: &Region) {
        let reasons: Option<Vec<_>> = REASONS.iter().map(|r| region.reason(r.name())).collect();
        match reasons {
            Some(reasons) => {
                let _ = self.region.set((region.shared(), reasons));
            }
            None => tracing::warn!("the stats region has no room for the shed reasons"),
        }
    }

    pub fn count(&self, reason: Reason, rank: Rank) {
        let r = REASONS.iter().position(|x| *x == reason).unwrap_or(0);
        // ORDERING: Relaxed: a standalone counter.
        self.shed[r][rank.index()].fetch_add(1, Relaxed);
        if let Some((slot, ids)) = self.region.get() {
            slot.shed(reason.layer(), ids[r], rank.index() as u8);
        }
    }

    pub fn core(&self, index: usize) -> Option<&CoreGauges> {
        self.cores.get(index)
    }

    pub fn snapshot(&self) -> OverloadSnapshot {
        OverloadSnapshot {
            shed: REASONS
                .iter()
                .zip(&self.shed)
                .map(|(r, by_rank)| (*r, std::array::from_fn(|i| by_rank[i].load(Relaxed))))
                .collect(),
            cores: self
                .cores
                .iter()
                .map(|c| {
                    [
                        c.delay_us.load(Relaxed),
                        c.max_delay_us.load(Relaxed),
                        c.max_turn_us.load(Relaxed),
                        c.overloaded.load(Relaxed),
                    ]
                })
                .collect(),
            admitted: (self.cores.iter())
                .map(|c| std::array::from_fn(|b| c.admitted[b].load(Relaxed)))
                .collect(),
        }
    }
}
