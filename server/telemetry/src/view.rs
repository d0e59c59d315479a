//! A checked view of a mapped region (the writer's own or a reader's
//! read-only mapping): the header validated once, then typed reads and a
//! full [`Snapshot`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::layout::*;
use crate::snapshot::{CommandTotals, CoreTotals, HotKey, ShedCount, Snapshot};
use crate::words::{get_bytes, get_name, seq_read};

/// Why a file is not a region this build can use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error("stats file too small ({len} bytes): not a Citadel stats region")]
    TooSmall { len: usize },
    #[error("not a Citadel stats region (bad magic)")]
    BadMagic,
    #[error("stats region layout version {found}, this build reads version {expected}")]
    Version { found: u64, expected: u64 },
    #[error("stats region header is inconsistent: {0}")]
    Inconsistent(&'static str),
    #[error("stats region truncated: {len} bytes, the header says {need}")]
    Truncated { need: usize, len: usize },
}

#[derive(Clone, Copy)]
pub struct View<'a> {
    pub words: &'a [AtomicU64],
    pub geometry: Geometry,
    pub at: Offsets,
}

impl<'a> View<'a> {
    /// Validates the header of `words` (magic, version, fixed sizes, the
    /// stored offsets against the ones the geometry gives, the length).
    pub fn check(words: &'a [AtomicU64]) -> Result<View<'a>, LayoutError> {
        if words.len() < HEADER_WORDS {
            return Err(LayoutError::TooSmall {
                len: words.len() * 8,
            });
        }
        let h = |f: Field| words[f as usize].load(Relaxed);
        if h(Field::Magic) != MAGIC {
            return Err(LayoutError::BadMagic);
        }
        if h(Field::Version) != LAYOUT_VERSION {
            return Err(LayoutError::Version {
                found: h(Field::Version),
                expected: LAYOUT_VERSION,
            });
        }
        let fixed = [
            (Field::Layers, LAYERS),
            (Field::Reasons, REASONS),
            (Field::Priorities, PRIORITIES),
            (Field::LatencyBuckets, LATENCY_BUCKETS),
            (Field::Plugins, PLUGINS),
            (Field::PluginVersions, PLUGIN_VERSIONS),
            (Field::PluginBuckets, PLUGIN_BUCKETS),
        ];
        if fixed.iter().any(|&(f, n)| h(f) != n as u64) {
            return Err(LayoutError::Inconsistent("fixed table sizes differ"));
        }
        // Bounded so that a corrupt header cannot make the offsets overflow.
        let size = |f: Field, max: u64| {
            let v = h(f);
            (v <= max)
                .then_some(v as usize)
                .ok_or(LayoutError::Inconsistent("a size is out of range"))
        };
        let geometry = Geometry {
            cores: size(Field::Cores, 4096)?,
            commands: size(Field::Commands, 1 << 16)?,
            hot_keys: size(Field::HotKeys, 1 << 16)?,
            info_bytes: size(Field::InfoBytes, 1 << 30)?,
        };
        let at = geometry.offsets();
        let stored = [
            (Field::NamesAt, at.names),
            (Field::CoresAt, at.cores),
            (Field::CoreStride, at.core_stride),
            (Field::HotAt, at.hot),
            (Field::PluginsAt, at.plugins),
            (Field::InfoAt, at.info),
            (Field::TotalWords, at.total),
        ];
        if stored.iter().any(|&(f, n)| h(f) != n as u64) {
            return Err(LayoutError::Inconsistent("section offsets differ"));
        }
        if words.len() < at.total {
            return Err(LayoutError::Truncated {
                need: at.total * 8,
                len: words.len() * 8,
            });
        }
        Ok(View {
            words,
            geometry,
            at,
        })
    }

    pub fn header(&self, f: Field) -> &'a AtomicU64 {
        &self.words[f as usize]
    }

    /// Core `core`'s slot (`cores` is the shared slot).
    pub fn slot(&self, core: usize) -> &'a [AtomicU64] {
        let start = self.at.cores + core * self.at.core_stride;
        &self.words[start..start + self.at.core_stride]
    }

    /// Name `i` of the names section (commands, then reasons, priorities).
    pub fn name_words(&self, i: usize) -> &'a [AtomicU64] {
        let start = self.at.names + i * NAME_WORDS;
        &self.words[start..start + NAME_WORDS]
    }

    pub fn reason_index(&self, reason: usize) -> usize {
        self.geometry.commands + reason
    }

    pub fn priority_index(&self, priority: usize) -> usize {
        self.geometry.commands + REASONS + priority
    }

    pub fn hot_entry(&self, i: usize) -> &'a [AtomicU64] {
        let start = self.at.hot + i * HOT_KEY_WORDS;
        &self.words[start..start + HOT_KEY_WORDS]
    }

    /// The plugin table (see `plugins`).
    pub(crate) fn plugin_section(&self) -> crate::plugins::Section<'a> {
        crate::plugins::Section {
            words: self.words,
            at: self.at.plugins,
        }
    }

    pub fn info_words(&self) -> &'a [AtomicU64] {
        &self.words[self.at.info..self.at.total]
    }

    /// Everything, summed over cores where that is what one wants.
    pub fn snapshot(&self) -> Snapshot {
        let h = |f: Field| self.header(f).load(Relaxed);
        let slots: Vec<&[AtomicU64]> = (0..=self.geometry.cores).map(|c| self.slot(c)).collect();
        let load = |slot: &[AtomicU64], i: usize| slot[i].load(Relaxed);
        let mut commands = Vec::new();
        let mut cores = vec![CoreTotals::default(); self.geometry.cores];
        for cmd in 0..self.geometry.commands {
            let mut total = CommandTotals {
                name: String::new(),
                ..Default::default()
            };
            for (c, slot) in slots.iter().enumerate() {
                let base = SLOT_COMMANDS + cmd * COMMAND_WORDS;
                let (nanos, failed) = (load(slot, base), load(slot, base + 1));
                let mut calls = 0;
                for (b, sum) in total.buckets.iter_mut().enumerate() {
                    let n = load(slot, base + 2 + b);
                    *sum += n;
                    calls += n;
                }
                total.calls += calls;
                total.nanos += nanos;
                total.failed += failed;
                if let Some(core) = cores.get_mut(c) {
                    core.commands += calls;
                    core.nanos += nanos;
                    core.failed += failed;
                }
            }
            if total.calls > 0 {
                total.name = get_name(self.name_words(cmd));
                if total.name.is_empty() {
                    total.name = format!("slot{cmd}");
                }
                commands.push(total);
            }
        }
        for (core, slot) in cores.iter_mut().zip(&slots) {
            core.queue_delay_nanos = load(slot, SLOT_GAUGES + CoreGauge::QueueDelayNanos as usize);
            core.cpu_budget_permille =
                load(slot, SLOT_GAUGES + CoreGauge::CpuBudgetPermille as usize);
        }
        Snapshot {
            writer_pid: h(Field::WriterPid),
            started_ms: h(Field::StartedMs),
            heartbeat_ms: h(Field::HeartbeatMs),
            reopens: h(Field::Reopens),
            cores,
            commands,
            shed: self.shed_counts(&slots),
            hot_keys: self.hot_keys(),
            plugins: crate::plugins::read(self.plugin_section()),
            plugins_unlisted: h(Field::PluginsUnlisted),
            info: self.info_text(),
        }
    }

    fn shed_counts(&self, slots: &[&[AtomicU64]]) -> Vec<ShedCount> {
        let mut out = Vec::new();
        for layer in Layer::ALL {
            for reason in 0..REASONS {
                for priority in 0..PRIORITIES {
                    let word = self.geometry.shed_word(layer, reason, priority);
                    let count: u64 = slots.iter().map(|s| s[word].load(Relaxed)).sum();
                    if count == 0 {
                        continue;
                    }
                    let reason = match get_name(self.name_words(self.reason_index(reason))) {
                        name if name.is_empty() => format!("reason{reason}"),
                        name => name,
                    };
                    let priority_name = get_name(self.name_words(self.priority_index(priority)));
                    out.push(ShedCount {
                        layer,
                        reason,
                        priority: priority as u8,
                        priority_name,
                        count,
                    });
                }
            }
        }
        out
    }

    fn hot_keys(&self) -> Vec<HotKey> {
        let count = |v: &View<'_>| {
            (v.header(Field::HotCount).load(Relaxed) as usize).min(v.geometry.hot_keys)
        };
        seq_read(self.header(Field::HotSeq), || {
            (0..count(self))
                .map(|i| {
                    let e = self.hot_entry(i);
                    let len = (e[0].load(Relaxed) as usize).min(HOT_KEY_BYTES);
                    HotKey {
                        key: get_bytes(&e[2..], len),
                        rate: f64::from_bits(e[1].load(Relaxed)),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
    }

    fn info_text(&self) -> String {
        let words = self.info_words();
        let bytes = seq_read(self.header(Field::InfoSeq), || {
            let len = (self.header(Field::InfoLen).load(Relaxed) as usize).min(words.len() * 8);
            get_bytes(words, len)
        });
        String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned()
    }
}
