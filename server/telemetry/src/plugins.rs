//! The plugin section: per plugin and version, calls (the latency
//! buckets' sum), errors, timeouts, calls in flight and a log2 latency
//! histogram; per plugin, calls refused before a version was chosen.
//!
//! Every server thread adds to the same entry (relaxed `fetch_add`: the
//! counts are independent, and a reader wants no order between them). The
//! names are written once, at startup, between a zero and a fresh value of
//! the entry's checksum word (release), which a reader loads (acquire)
//! before and after copying the names: a reader never shows a name that is
//! being written, and an entry a crash left half-named fails its checksum
//! (it is skipped, then reused by the next server).

use std::sync::atomic::{
    fence, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::Arc;

use crate::layout::*;
use crate::snapshot::{PluginTotals, VersionTotals};
use crate::words::{fit_name, get_name, put_name, Mapping};

/// How a plugin call ended, for its version's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallEnd {
    Ok,
    /// An error reply (counted in the latency buckets too).
    Error,
    /// No reply in time (not in the buckets).
    Timeout,
}

/// Where one plugin's calls are counted; shared by every server thread.
pub struct PluginEntry {
    map: Arc<Mapping>,
    /// First word of the entry.
    base: usize,
    /// The version slot of each of the server's versions (`None`: past
    /// `PLUGIN_VERSIONS`, not recorded).
    versions: Vec<Option<usize>>,
}

impl std::fmt::Debug for PluginEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PluginEntry({}, {:?})", self.base, self.versions)
    }
}

fn version_at(slot: usize) -> usize {
    PLUGIN_HEAD_WORDS + slot * VERSION_WORDS
}

impl PluginEntry {
    #[inline]
    fn version(&self, version: usize) -> Option<&[AtomicU64]> {
        let slot = (*self.versions.get(version)?)?;
        let at = self.base + version_at(slot);
        Some(&self.map.words()[at..at + VERSION_WORDS])
    }

    /// A call went to `version`.
    #[inline]
    pub fn enter(&self, version: usize) {
        if let Some(v) = self.version(version) {
            v[VersionWord::InFlight as usize].fetch_add(1, Relaxed);
        }
    }

    /// A call left `version` without ending (sent again elsewhere).
    #[inline]
    pub fn leave(&self, version: usize) {
        if let Some(v) = self.version(version) {
            v[VersionWord::InFlight as usize].fetch_sub(1, Relaxed);
        }
    }

    /// A call to `version` ended after `nanos`.
    #[inline]
    pub fn ended(&self, version: usize, nanos: u64, how: CallEnd) {
        let Some(v) = self.version(version) else {
            return;
        };
        v[VersionWord::InFlight as usize].fetch_sub(1, Relaxed);
        match how {
            CallEnd::Timeout => {
                v[VersionWord::Timeouts as usize].fetch_add(1, Relaxed);
                return;
            }
            CallEnd::Error => {
                v[VersionWord::Errors as usize].fetch_add(1, Relaxed);
            }
            CallEnd::Ok => {}
        }
        v[VersionWord::Nanos as usize].fetch_add(nanos, Relaxed);
        let b = VersionWord::Buckets as usize + log2_bucket(nanos, PLUGIN_BUCKETS);
        v[b].fetch_add(1, Relaxed);
    }

    /// What the region holds for `version` (lifetime counts, kept across
    /// restarts); `None` for a version past the table.
    pub fn totals(&self, version: usize) -> Option<VersionTotals> {
        let v = self.version(version)?;
        Some(version_totals(v, get_name(&v[..NAME_WORDS])))
    }

    /// A call was refused before a version was chosen (overload).
    #[inline]
    pub fn refused(&self) {
        self.map.words()[self.base + PluginWord::Refused as usize].fetch_add(1, Relaxed);
    }
}

/// The name words of an entry: the plugin's, then each version's.
fn name_words(entry: &[AtomicU64]) -> impl Iterator<Item = &[AtomicU64]> {
    std::iter::once(&entry[..NAME_WORDS])
        .chain((0..PLUGIN_VERSIONS).map(|s| &entry[version_at(s)..version_at(s) + NAME_WORDS]))
}

/// FNV-1a over the name words' values, never 0.
fn checksum(values: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for b in v.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h | 1
}

/// An entry's names `(plugin, per version slot)` if its checksum holds.
fn names(entry: &[AtomicU64]) -> Option<(String, Vec<String>)> {
    let sum = &entry[PluginWord::Checksum as usize];
    let before = sum.load(Acquire);
    if before == 0 {
        return None;
    }
    let values: Vec<u64> = name_words(entry)
        .flatten()
        .map(|a| a.load(Relaxed))
        .collect();
    // Pairs with the writer's fence after zeroing the checksum: names
    // copied while it rewrote them show a changed checksum below.
    fence(Acquire);
    if sum.load(Relaxed) != before || checksum(&values) != before {
        return None;
    }
    let mut names = values.chunks(NAME_WORDS).map(|w| {
        let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    });
    let plugin = names.next()?;
    Some((plugin, names.collect()))
}

/// Calls in flight end with the server that sent them.
/// The words of a region: the plugin section is `words[at..]`, from
/// `Offsets::plugins` (taken as words, not as a `View`, which reads it).
#[derive(Clone, Copy)]
pub(crate) struct Section<'a> {
    pub words: &'a [AtomicU64],
    pub at: usize,
}

impl<'a> Section<'a> {
    fn entry(&self, i: usize) -> &'a [AtomicU64] {
        let start = self.at + i * PLUGIN_WORDS;
        &self.words[start..start + PLUGIN_WORDS]
    }
}

pub(crate) fn clear_in_flight(view: Section<'_>) {
    for i in 0..PLUGINS {
        let entry = view.entry(i);
        for s in 0..PLUGIN_VERSIONS {
            entry[version_at(s) + VersionWord::InFlight as usize].store(0, Relaxed);
        }
    }
}

/// See `Region::plugins`.
pub(crate) fn claim(
    view: Section<'_>,
    map: &Arc<Mapping>,
    wanted: &[(&str, Vec<&str>)],
) -> Vec<Option<PluginEntry>> {
    let found: Vec<Option<(String, Vec<String>)>> =
        (0..PLUGINS).map(|i| names(view.entry(i))).collect();
    let mut taken = [false; PLUGINS];
    let mut chosen: Vec<Option<usize>> = wanted
        .iter()
        .map(|(name, _)| {
            let name = fit_name(name, NAME_WORDS);
            let i = (0..PLUGINS)
                .find(|&i| !taken[i] && found[i].as_ref().is_some_and(|(n, _)| n == name))?;
            taken[i] = true;
            Some(i)
        })
        .collect();
    // Free (or torn) entries first, then those of plugins gone since.
    let mut spare = (0..PLUGINS)
        .filter(|&i| !taken[i] && found[i].is_none())
        .chain((0..PLUGINS).filter(|&i| !taken[i] && found[i].is_some()))
        .collect::<Vec<_>>()
        .into_iter();
    for c in chosen.iter_mut().filter(|c| c.is_none()) {
        *c = spare.next();
    }
    let mut unlisted = 0;
    let out = wanted
        .iter()
        .zip(chosen)
        .map(|((name, versions), i)| {
            let Some(i) = i else {
                unlisted += versions.len() as u64;
                return None;
            };
            let kept = found[i]
                .as_ref()
                .filter(|(n, _)| n == fit_name(name, NAME_WORDS));
            let slots = name_entry(view.entry(i), name, versions, kept.map(|k| &k.1));
            unlisted += slots.iter().filter(|s| s.is_none()).count() as u64;
            Some(PluginEntry {
                map: map.clone(),
                base: view.at + i * PLUGIN_WORDS,
                versions: slots,
            })
        })
        .collect();
    view.words[Field::PluginsUnlisted as usize].store(unlisted, Relaxed);
    out
}

/// Names entry `entry` for `plugin` and its `versions`, keeping the
/// counters of the versions `old` (its names as found) has; returns the
/// slot of each version.
fn name_entry(
    entry: &[AtomicU64],
    plugin: &str,
    versions: &[&str],
    old: Option<&Vec<String>>,
) -> Vec<Option<usize>> {
    let fresh = old.is_none();
    let old = |s: usize| old.and_then(|o| o.get(s)).map(String::as_str);
    let mut used = [false; PLUGIN_VERSIONS];
    let mut slots: Vec<Option<usize>> = versions
        .iter()
        .map(|v| {
            let v = fit_name(v, NAME_WORDS);
            let s = (0..PLUGIN_VERSIONS).find(|&s| !used[s] && old(s) == Some(v))?;
            used[s] = true;
            Some(s)
        })
        .collect();
    let mut free = (0..PLUGIN_VERSIONS).filter(|&s| !used[s]);
    for s in slots.iter_mut().filter(|s| s.is_none()) {
        *s = free.next();
    }
    let sum = &entry[PluginWord::Checksum as usize];
    sum.store(0, Relaxed);
    fence(Release);
    if fresh {
        // A new entry (or a torn one, or another plugin's): from zero.
        entry[PluginWord::Refused as usize].store(0, Relaxed);
    }
    put_name(&entry[..NAME_WORDS], plugin);
    for s in 0..PLUGIN_VERSIONS {
        let v = &entry[version_at(s)..version_at(s) + VERSION_WORDS];
        let name = slots
            .iter()
            .position(|&x| x == Some(s))
            .map(|j| versions[j]);
        let keep = name.is_some_and(|n| old(s) == Some(fit_name(n, NAME_WORDS)));
        if !keep {
            v.iter().for_each(|w| w.store(0, Relaxed));
        }
        put_name(&v[..NAME_WORDS], name.unwrap_or(""));
    }
    let values: Vec<u64> = name_words(entry)
        .flatten()
        .map(|a| a.load(Relaxed))
        .collect();
    sum.store(checksum(&values), Release);
    slots
}

/// Every named entry's totals (what `Snapshot::plugins` holds).
pub(crate) fn read(view: Section<'_>) -> Vec<PluginTotals> {
    (0..PLUGINS)
        .filter_map(|i| {
            let entry = view.entry(i);
            let (name, versions) = names(entry)?;
            let versions = versions
                .into_iter()
                .enumerate()
                .filter(|(_, n)| !n.is_empty())
                .map(|(s, name)| version_totals(&entry[version_at(s)..], name))
                .collect();
            Some(PluginTotals {
                name,
                refused: entry[PluginWord::Refused as usize].load(Relaxed),
                versions,
            })
        })
        .collect()
}

fn version_totals(v: &[AtomicU64], name: String) -> VersionTotals {
    let load = |w: VersionWord| v[w as usize].load(Relaxed);
    let mut buckets = [0; PLUGIN_BUCKETS];
    for (b, n) in buckets.iter_mut().enumerate() {
        *n = v[VersionWord::Buckets as usize + b].load(Relaxed);
    }
    VersionTotals {
        name,
        calls: buckets.iter().sum(),
        errors: load(VersionWord::Errors),
        timeouts: load(VersionWord::Timeouts),
        in_flight: load(VersionWord::InFlight),
        nanos: load(VersionWord::Nanos),
        buckets,
    }
}
