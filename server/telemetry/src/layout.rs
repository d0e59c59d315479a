//! The region's fixed layout: a header of 64-bit words (magic, layout
//! version, geometry, section offsets, writer liveness), then the
//! sections, every one an array of 64-bit words so that both sides read
//! and write them as `AtomicU64`.
//!
//! ```text
//! header            HEADER_WORDS words (see `Field`)
//! command names     commands × NAME_WORDS   (zero-padded UTF-8)
//! reason names      REASONS × NAME_WORDS
//! priority names    PRIORITIES × NAME_WORDS
//! core slots        (cores + 1) × core_stride; the last slot is shared
//!   gauges          CORE_GAUGES words
//!   commands        commands × COMMAND_WORDS (nanos, failed, buckets)
//!   shed            LAYERS × REASONS × PRIORITIES
//! hot keys          hot_keys × HOT_KEY_WORDS (length, rate, key bytes)
//! plugins           PLUGINS × PLUGIN_WORDS, from a whole line
//!   head            PLUGIN_HEAD_WORDS (name, names checksum, refused)
//!   versions        PLUGIN_VERSIONS × VERSION_WORDS (name, errors,
//!                   timeouts, in flight, nanos, PLUGIN_BUCKETS buckets)
//! info text         info_bytes / 8 words
//! ```
//!
//! Any change to this layout bumps [`LAYOUT_VERSION`]: a writer then
//! recreates the file and a reader refuses it with a clear error.

/// `b"CITSTATS"`, little-endian: the first word of every region file.
pub const MAGIC: u64 = u64::from_le_bytes(*b"CITSTATS");
/// Bumped on any change of the layout below.
pub const LAYOUT_VERSION: u64 = 2;

pub const HEADER_WORDS: usize = 64;
/// A name (command, reason, priority): 32 bytes, zero-padded.
pub const NAME_WORDS: usize = 4;
pub const NAME_BYTES: usize = NAME_WORDS * 8;
/// Latency buckets per command: bucket `b` < 15 counts calls that took
/// under `1024 << b` ns (about 1 µs to 16.8 ms), bucket 15 the slower.
pub const LATENCY_BUCKETS: usize = 16;
/// Per command and core: total nanoseconds, failed calls, the buckets
/// (calls are the buckets' sum: one add fewer per command).
pub const COMMAND_WORDS: usize = 2 + LATENCY_BUCKETS;
/// Per-core gauges (see `CoreGauge`), with room to spare.
pub const CORE_GAUGES: usize = 8;
/// Shed counts: every layer × reason slot × priority.
pub const LAYERS: usize = 5;
pub const REASONS: usize = 16;
pub const PRIORITIES: usize = 8;
pub const SHED_WORDS: usize = LAYERS * REASONS * PRIORITIES;
/// A hot key: its length, its rate (f64 bits), up to 128 key bytes.
pub const HOT_KEY_BYTES: usize = 128;
pub const HOT_KEY_WORDS: usize = 2 + HOT_KEY_BYTES / 8;
/// Core slots are padded to whole 128-byte lines (no false sharing).
const LINE_WORDS: usize = 16;
/// Plugin entries: a plugin's name, then its versions' counters. A server
/// with more plugins (or a plugin with more versions) records the first
/// ones only and counts the rest in `Field::PluginsUnlisted`.
pub const PLUGINS: usize = 32;
pub const PLUGIN_VERSIONS: usize = 4;
/// Plugin call latency buckets: as the commands' (`1024 << b` ns), on to
/// about 8.6 s (plugin calls wait on other processes), the last the slower.
pub const PLUGIN_BUCKETS: usize = 24;
/// An entry's head: name, `PluginWord::Checksum`, `PluginWord::Refused`,
/// padded to a line so each version's counters start a line of their own.
pub const PLUGIN_HEAD_WORDS: usize = LINE_WORDS;
/// A version: its name, then `VersionWord`s, then the buckets.
pub const VERSION_WORDS: usize = NAME_WORDS + 4 + PLUGIN_BUCKETS;
pub const PLUGIN_WORDS: usize = PLUGIN_HEAD_WORDS + PLUGIN_VERSIONS * VERSION_WORDS;

/// Words of a plugin entry's head after its name.
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
pub enum PluginWord {
    /// Checksum of the entry's names (plugin and versions), never 0 once
    /// they are written; 0 while a writer names the entry. A reader skips
    /// an entry whose names do not match it (a server that died naming it).
    Checksum = NAME_WORDS,
    /// Calls refused before a version was chosen (ring full, in-flight limit).
    Refused,
}

/// Words of a version's counters after its name.
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
pub enum VersionWord {
    /// Calls that answered an error (counted in the buckets too).
    Errors = NAME_WORDS,
    /// Calls that timed out (not in the buckets, as PLUGIN INFO's `calls`).
    Timeouts,
    /// Calls sent and not yet ended (a gauge; zeroed when a server reopens).
    InFlight,
    /// Total nanoseconds of the calls in the buckets.
    Nanos,
    /// The first of `PLUGIN_BUCKETS` latency buckets.
    Buckets,
}

/// The header's words.
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
pub enum Field {
    Magic,
    Version,
    Cores,
    Commands,
    HotKeys,
    InfoBytes,
    Layers,
    Reasons,
    Priorities,
    LatencyBuckets,
    NamesAt,
    CoresAt,
    CoreStride,
    HotAt,
    InfoAt,
    TotalWords,
    /// Process id of the server that has it open (0: none yet).
    WriterPid,
    /// When that server opened it (Unix ms).
    StartedMs,
    /// Last time the server's publisher wrote it (Unix ms).
    HeartbeatMs,
    /// How many times a server opened this file and kept its counters.
    Reopens,
    /// Seqlock and entry count of the hot-key table.
    HotSeq,
    HotCount,
    /// Seqlock and byte length of the INFO snapshot.
    InfoSeq,
    InfoLen,
    Plugins,
    PluginVersions,
    PluginBuckets,
    PluginsAt,
    /// (plugin, version) pairs the last server could not fit in the table.
    PluginsUnlisted,
}

/// The per-core gauges a core sets (a store, not an add).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum CoreGauge {
    /// The core's current queueing delay (ns), as admission measures it.
    QueueDelayNanos,
    /// Share of the last loop turn's CPU budget used, in per mille.
    CpuBudgetPermille,
}

/// The protection layers of the shed error `-OVERLOAD <layer> <reason>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Layer {
    Connection,
    Core,
    Quota,
    Downstream,
    Key,
}

impl Layer {
    pub const ALL: [Layer; LAYERS] = [
        Layer::Connection,
        Layer::Core,
        Layer::Quota,
        Layer::Downstream,
        Layer::Key,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Connection => "connection",
            Layer::Core => "core",
            Layer::Quota => "quota",
            Layer::Downstream => "downstream",
            Layer::Key => "key",
        }
    }
}

/// The sizes a server chooses; everything else follows from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Server threads (cores); one more slot is shared by other threads.
    pub cores: usize,
    /// Command slots (the server's command table indices).
    pub commands: usize,
    /// Entries of the hot-key table.
    pub hot_keys: usize,
    /// Room for the INFO snapshot text (a multiple of 8).
    pub info_bytes: usize,
}

/// Where each section starts, in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    pub names: usize,
    pub cores: usize,
    pub core_stride: usize,
    pub hot: usize,
    pub plugins: usize,
    pub info: usize,
    pub total: usize,
}

/// Inside a core slot.
pub const SLOT_GAUGES: usize = 0;
pub const SLOT_COMMANDS: usize = CORE_GAUGES;

impl Geometry {
    pub fn offsets(&self) -> Offsets {
        let names = HEADER_WORDS;
        let cores = names + (self.commands + REASONS + PRIORITIES) * NAME_WORDS;
        let raw = CORE_GAUGES + self.commands * COMMAND_WORDS + SHED_WORDS;
        let core_stride = raw.div_ceil(LINE_WORDS) * LINE_WORDS;
        let hot = cores + (self.cores + 1) * core_stride;
        let plugins = (hot + self.hot_keys * HOT_KEY_WORDS).div_ceil(LINE_WORDS) * LINE_WORDS;
        let info = plugins + PLUGINS * PLUGIN_WORDS;
        let total = info + self.info_bytes.div_ceil(8);
        Offsets {
            names,
            cores,
            core_stride,
            hot,
            plugins,
            info,
            total,
        }
    }

    /// The word of the shed counter `(layer, reason, priority)` in a slot.
    pub fn shed_word(&self, layer: Layer, reason: usize, priority: usize) -> usize {
        SLOT_COMMANDS
            + self.commands * COMMAND_WORDS
            + (layer as usize * REASONS + reason) * PRIORITIES
            + priority
    }
}

/// The latency bucket of a command that took `nanos`.
#[inline]
pub fn latency_bucket(nanos: u64) -> usize {
    log2_bucket(nanos, LATENCY_BUCKETS)
}

/// Bucket `b` of `buckets` counts what took under `1024 << b` ns (the
/// last, everything slower).
#[inline]
pub fn log2_bucket(nanos: u64, buckets: usize) -> usize {
    ((64 - (nanos >> 10).leading_zeros()) as usize).min(buckets - 1)
}

/// The upper bound (ns, exclusive) of command bucket `b`; `None` for the last.
pub fn bucket_bound_nanos(b: usize) -> Option<u64> {
    bound_of(b, LATENCY_BUCKETS)
}

/// The upper bound (ns, exclusive) of bucket `b` of `buckets`; `None` for the last.
pub fn bound_of(b: usize, buckets: usize) -> Option<u64> {
    (b < buckets - 1).then(|| 1024u64 << b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_split_at_powers_of_two_microseconds() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(1023), 0);
        assert_eq!(latency_bucket(1024), 1);
        assert_eq!(latency_bucket(2047), 1);
        assert_eq!(latency_bucket(2048), 2);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
        for nanos in [0, 5, 1024, 5000, 1 << 20, 1 << 40] {
            let b = latency_bucket(nanos);
            if let Some(bound) = bucket_bound_nanos(b) {
                assert!(nanos < bound);
            }
            if b > 0 {
                assert!(nanos >= bucket_bound_nanos(b - 1).unwrap());
            }
        }
    }

    #[test]
    fn core_slots_are_whole_lines_after_the_names() {
        let g = Geometry {
            cores: 3,
            commands: 10,
            hot_keys: 4,
            info_bytes: 100,
        };
        let at = g.offsets();
        assert_eq!(at.core_stride % 16, 0);
        assert!(at.core_stride >= CORE_GAUGES + 10 * COMMAND_WORDS + SHED_WORDS);
        assert_eq!(at.hot, at.cores + 4 * at.core_stride);
        assert_eq!(at.plugins % 16, 0);
        assert!(at.plugins >= at.hot + 4 * HOT_KEY_WORDS);
        assert_eq!(at.info, at.plugins + PLUGINS * PLUGIN_WORDS);
        assert_eq!(at.total, at.info + 13);
        // Each version's counters start a line.
        assert_eq!(PLUGIN_HEAD_WORDS % 16, 0);
        assert_eq!(VERSION_WORDS % 16, 0);
        assert!(g.shed_word(Layer::Key, REASONS - 1, PRIORITIES - 1) < at.core_stride);
    }
}
