//! Opening and attaching the file (warm restart; crash recovery is in
//! recover.rs), handing out handles, closing, stats.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::Cache;
use crate::error::{HandleError, OpenError};
use crate::handle::CacheHandle;
use crate::index::MAX_SEGMENTS;
use crate::journal::Replayed;
use crate::layout::{
    Geometry, HeaderProblem, BUCKET_SLOTS, H_CLEAN, H_GENERATION, LAYOUT_VERSION, LEVELS,
    MAX_WRITERS, MIN_MEMORY, W_EXPIRES, W_KEYS, W_NS_EXPIRES, W_NS_KEYS,
};
use crate::namespace::MAX_NAMESPACES;
use crate::region::{reserve, HugePages, Region, ReserveError};
use crate::stats::{CacheStats, Counters};
use crate::sync::Ordering;

#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Path of the mapped file, e.g. /dev/shm/citadel-6379.cache.
    pub path: PathBuf,
    /// Size bound of the whole file (header, index and value store).
    pub max_memory: u64,
    /// Largest accepted value in bytes (default 64 MiB).
    pub max_value_size: u64,
    /// Recreate the file even if it exists (needed after a layout mismatch).
    pub fresh: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            path: PathBuf::from("/dev/shm/citadel-6379.cache"),
            max_memory: 1 << 30,
            max_value_size: 64 << 20,
            fresh: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AttachReport {
    /// True when an existing file was attached (its keys are served at once).
    pub warm: bool,
    /// False when the previous owner did not shut down cleanly (recovery ran).
    pub clean: bool,
    pub keys: u64,
    /// Index entries recovery dropped because they pointed at torn data.
    pub dropped: u64,
    /// Multi-key writes a crash interrupted while they claimed slots,
    /// undone by recovery (journal.rs).
    pub rolled_back: u64,
    /// Multi-key writes a crash interrupted while they stored entries,
    /// completed by recovery.
    pub rolled_forward: u64,
    pub elapsed: Duration,
}

impl Cache {
    pub fn open(cfg: CacheConfig) -> Result<(Arc<Cache>, AttachReport), OpenError> {
        let started = Instant::now();
        let path = cfg.path.clone();
        let io = |source| OpenError::Io {
            path: path.clone(),
            source,
        };
        let geo = Geometry::for_memory(cfg.max_memory)
            .ok_or(OpenError::TooSmall(cfg.max_memory, MIN_MEMORY))?;
        if geo.segments as u64 > MAX_SEGMENTS {
            return Err(OpenError::Corrupt {
                path,
                reason: "maxmemory exceeds the addressable segments".into(),
            });
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        // The directory's mount is the file's (the file may not exist yet).
        let huge_pages = HugePages::of(dir.unwrap_or(Path::new(".")));
        if huge_pages == HugePages::Hugetlbfs {
            return Err(OpenError::OnHugetlbfs { path });
        }
        if cfg.fresh {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
                _ => {}
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(OpenError::InUse { path });
        }
        let existing = file.metadata().map_err(io)?.len();
        let size = if existing == 0 {
            geo.used_size()
        } else {
            existing
        };
        if existing == 0 {
            file.set_len(size).map_err(io)?;
        }
        // Before anything is mapped: a file system short of room fails
        // here, not with SIGBUS at a later write (`region/reserve.rs`).
        let reserving = Instant::now();
        match reserve(&file, size) {
            Ok(()) if reserving.elapsed() > Duration::from_secs(1) => tracing::info!(
                path = %path.display(),
                bytes = size,
                took_ms = reserving.elapsed().as_millis() as u64,
                "reserved the cache file's space on its file system"
            ),
            Ok(()) => {}
            Err(ReserveError::NoSpace) => {
                if existing == 0 {
                    // (A file this start made: not left behind, sparse.)
                    let _ = std::fs::remove_file(&path);
                }
                return Err(OpenError::NoSpace { path, needed: size });
            }
            Err(ReserveError::Io(e)) => return Err(io(e)),
        }
        let (cache, mut report) = if existing == 0 {
            let region = Region::map(&file, geo.used_size() as usize).map_err(io)?;
            let cache = Cache::new(region, geo, &cfg, file, huge_pages);
            cache.format();
            let report = AttachReport {
                warm: false,
                clean: true,
                keys: 0,
                dropped: 0,
                rolled_back: 0,
                rolled_forward: 0,
                elapsed: Duration::ZERO,
            };
            (cache, report)
        } else {
            let region = Region::map(&file, existing as usize).map_err(io)?;
            if let Some(from) = Geometry::upgrade_header(&region) {
                tracing::info!(
                    path = %path.display(),
                    from,
                    to = LAYOUT_VERSION,
                    "cache file of an older layout: upgrading it in place (a recovery pass rebuilds its index lock words and key counters; the keys stay)"
                );
            }
            let found = Geometry::read_header(&region).map_err(|p| match p {
                HeaderProblem::Version(found) => OpenError::LayoutMismatch {
                    path: path.clone(),
                    found,
                    expected: LAYOUT_VERSION,
                },
                HeaderProblem::NotCache(reason) => OpenError::Corrupt {
                    path: path.clone(),
                    reason: reason.into(),
                },
                HeaderProblem::Corrupt(reason) => OpenError::Corrupt {
                    path: path.clone(),
                    reason,
                },
            })?;
            // A file made for more than maxmemory stays warm under a cap
            // (memory_cap.rs); one made for less cannot grow while mapped.
            if found != geo && found.file_size < cfg.max_memory {
                return Err(OpenError::SizeMismatch {
                    path,
                    found: found.file_size,
                    expected: cfg.max_memory,
                });
            }
            let mut cache = Cache::new(region, found, &cfg, file, huge_pages);
            // ORDERING: Acquire pairs with the Release store in `close` (of
            // an earlier process, ordered anyway by the flock and mmap calls).
            let clean = cache.region.u64_at(H_CLEAN).load(Ordering::Acquire) == 1;
            cache.recovered = !clean;
            let (dropped, replayed) = if clean {
                (cache.reattach_clean(), Replayed::default())
            } else {
                cache.recover()
            };
            let report = AttachReport {
                warm: true,
                clean,
                keys: cache.len(),
                dropped,
                rolled_back: replayed.rolled_back,
                rolled_forward: replayed.rolled_forward,
                elapsed: Duration::ZERO,
            };
            (cache, report)
        };
        cache.count_free_segments();
        if cache.set_memory_cap(cfg.max_memory).is_some() {
            tracing::info!(
                path = %cache.path.display(),
                file_bytes = cache.geo.file_size,
                maxmemory = cfg.max_memory,
                "cache file made for more than maxmemory: memory in use capped at maxmemory"
            );
        }
        // From here on the file is "in use": a crash leaves clean == 0.
        // ORDERING: Release: the attach's writes precede the mark (single-
        // threaded here; the Arc below publishes everything to handles).
        cache.region.u64_at(H_CLEAN).store(0, Ordering::Release);
        // ORDERING: AcqRel: stronger than needed (single-threaded); kept so
        // the generation bump is ordered like the clean mark.
        cache
            .region
            .u64_at(H_GENERATION)
            .fetch_add(1, Ordering::AcqRel);
        report.elapsed = started.elapsed();
        tracing::debug!(?report, path = %cache.path.display(), "cache open");
        Ok((Arc::new(cache), report))
    }

    fn new(
        region: Region,
        geo: Geometry,
        cfg: &CacheConfig,
        file: File,
        huge_pages: HugePages,
    ) -> Cache {
        Cache {
            region,
            geo,
            counters: Counters::default(),
            max_value_size: cfg.max_value_size,
            recovered: false,
            evict_hand: AtomicU64::new(0),
            policy: Default::default(),
            budget: Default::default(),
            expiry_held_until: Default::default(),
            slots_taken: AtomicU64::new(0),
            path: cfg.path.clone(),
            huge_pages,
            _file: file,
        }
    }

    /// Initialises a zero-filled file: every segment free, then the header.
    fn format(&self) {
        let free = self.free_list();
        for id in (0..self.geo.segments).rev() {
            free.push(self.seg(id));
        }
        self.geo.write_header(&self.region);
    }

    pub fn handle(self: &Arc<Self>) -> Result<CacheHandle, HandleError> {
        // ORDERING: Relaxed: a guess for the CAS below.
        let mut taken = self.slots_taken.load(Ordering::Relaxed);
        loop {
            let slot = (!taken).trailing_zeros() as usize;
            if slot >= MAX_WRITERS {
                return Err(HandleError::NoFreeSlot(MAX_WRITERS));
            }
            // ORDERING: AcqRel: Acquire pairs with the Release `fetch_and`
            // of `release_slot` (the slot's previous handle finished with
            // it); Relaxed on failure: retry with the value seen.
            match self.slots_taken.compare_exchange(
                taken,
                taken | 1 << slot,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(CacheHandle::new(self.clone(), slot)),
                Err(now) => taken = now,
            }
        }
    }

    pub(crate) fn release_slot(&self, slot: usize) {
        self.release_actives(slot);
        // ORDERING: AcqRel: Release pairs with the Acquire of `handle`'s CAS
        // and of `close`: this handle's writes happen before the slot's reuse.
        self.slots_taken
            .fetch_and(!(1u64 << slot), Ordering::AcqRel);
    }

    /// O(writers) number of keys (expired but not yet reclaimed keys included, as in Redis).
    pub fn len(&self) -> u64 {
        self.sum_writer_counter(W_KEYS)
    }

    /// O(writers) number of keys that have a TTL (INFO keyspace `expires=`).
    pub fn keys_with_ttl(&self) -> u64 {
        self.sum_writer_counter(W_EXPIRES)
    }

    /// Keys, and keys with a TTL, of physical namespace `ns`, O(writers +
    /// namespaces) from the writers' counters (DBSIZE, INFO keyspace).
    /// None when they cannot say: `ns` is no namespace, or another
    /// namespace than 0 was written and the cache holds 2^31 keys or more
    /// (a namespace's 32-bit counters could then wrap); the caller counts
    /// by walking the index.
    pub fn namespace_counts(&self, ns: u8) -> Option<(u64, u64)> {
        let ns = usize::from(ns);
        let (keys, expires) = (self.len(), self.keys_with_ttl());
        if ns >= MAX_NAMESPACES {
            return None;
        }
        if self.namespaces_used() == 0 {
            // Only namespace 0 was ever written: it holds every key.
            return Some(if ns == 0 { (keys, expires) } else { (0, 0) });
        }
        if keys >= 1 << 31 {
            return None;
        }
        if ns != 0 {
            return Some((
                self.sum_namespace_counter(W_NS_KEYS, ns),
                self.sum_namespace_counter(W_NS_EXPIRES, ns),
            ));
        }
        // Namespace 0 has no counters of its own: the total less the rest.
        let others = |field| {
            (1..MAX_NAMESPACES)
                .map(|ns| self.sum_namespace_counter(field, ns))
                .sum::<u64>()
        };
        Some((
            keys.saturating_sub(others(W_NS_KEYS)),
            expires.saturating_sub(others(W_NS_EXPIRES)),
        ))
    }

    /// The sum of namespace `ns`'s 32-bit counter `field` over the writer
    /// slots (wrapping: one slot's share may be negative; so, for a
    /// moment, may the sum of shares read one after another).
    fn sum_namespace_counter(&self, field: usize, ns: usize) -> u64 {
        let sum = (0..MAX_WRITERS)
            // ORDERING: Relaxed: statistics (each slot has one writer).
            .map(|s| self.writer_u32(s, field + 4 * ns).load(Ordering::Relaxed))
            .fold(0u32, u32::wrapping_add);
        (sum as i32).max(0) as u64
    }

    fn sum_writer_counter(&self, field: usize) -> u64 {
        let sum: i64 = (0..MAX_WRITERS)
            // ORDERING: Relaxed: statistics (each slot has one writer).
            .map(|s| self.writer_word(s, field).load(Ordering::Relaxed) as i64)
            .sum();
        sum.max(0) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn max_value_size(&self) -> u64 {
        self.max_value_size
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file's filesystem gives the mapping huge pages.
    pub fn huge_pages(&self) -> &crate::region::HugePages {
        &self.huge_pages
    }

    /// Puts the cache's memory on NUMA node `node` (see
    /// `Region::bind_to_node`): called right after `open`, before the
    /// server threads fault the rest of the file in.
    #[cfg(not(loom))]
    pub fn bind_to_node(
        &self,
        node: usize,
        policy: crate::region::MemoryPolicy,
    ) -> std::io::Result<()> {
        self.region.bind_to_node(node, policy)
    }

    /// Makes everything written so far durable on the file's storage
    /// (msync of the whole mapping): what SAVE and BGSAVE do. A crashed
    /// process (even kill -9) loses nothing without it, since the pages
    /// live in the page cache; power loss or a kernel crash needs it.
    /// Safe while other threads write: a write racing it is kept by the
    /// next sync (or by the page cache, as any other write).
    pub fn sync(&self) -> std::io::Result<()> {
        self.region.flush()
    }

    /// Marks the file cleanly shut down (after every handle is dropped) and
    /// flushes it, so a disk- or DAX-backed file also survives a reboot.
    pub fn close(&self) {
        // ORDERING: Acquire pairs with `release_slot`'s Release: every
        // dropped handle's writes come before the clean mark.
        if self.slots_taken.load(Ordering::Acquire) != 0 {
            tracing::warn!("cache closed while handles are live; it will be recovered as unclean on next start");
            return;
        }
        if let Err(e) = self.region.flush() {
            tracing::warn!(error = %e, "flushing the cache file failed");
        }
        // ORDERING: Release pairs with the Acquire load of H_CLEAN in `open`.
        self.region.u64_at(H_CLEAN).store(1, Ordering::Release);
        let _ = self.region.flush();
    }

    pub fn stats(&self) -> CacheStats {
        let mut level_fill = Vec::with_capacity(LEVELS);
        for level in 0..LEVELS {
            // Sample up to 4096 buckets per level: INFO must stay cheap.
            let buckets = self.geo.buckets[level];
            let step = (buckets / 4096).max(1);
            let (mut used, mut seen) = (0u64, 0u64);
            let mut b = 0;
            let per = crate::layout::slots_per_bucket(level);
            while b < buckets {
                let base = crate::index::bucket_off(&self.geo, level, b);
                for i in BUCKET_SLOTS - per..BUCKET_SLOTS {
                    // ORDERING: Relaxed: a statistical sample.
                    used += (self.region.u64_at(base + 8 * i).load(Ordering::Relaxed) != 0) as u64;
                }
                seen += per as u64;
                b += step;
            }
            let total = self.geo.level_slots(level);
            level_fill.push((used * total / seen.max(1), total));
        }
        let free = u64::from(self.free_segments_by_state());
        let in_use = self.geo.segments as u64 - free;
        CacheStats {
            file_bytes: self.geo.used_size(),
            used_bytes: self.geo.segdata_off as u64 + in_use * crate::layout::SEGMENT_SIZE as u64,
            index_bytes: self.geo.index_bytes(),
            keys: self.len(),
            keys_with_ttl: self.keys_with_ttl(),
            hits: self.counters.sum(|c| &c.hits),
            misses: self.counters.sum(|c| &c.misses),
            evictions: self.counters.sum(|c| &c.evictions),
            expirations: self.counters.sum(|c| &c.expirations),
            reclaimed_pages: self.counters.sum(|c| &c.reclaimed_pages),
            reclaim_pending: self.counters.sum(|c| &c.reclaim_pending),
            lazyfreed_roots: self.counters.sum(|c| &c.lazyfreed_roots),
            reclaim_pending_roots: self.counters.sum(|c| &c.reclaim_pending_roots),
            journal_overflows: self.counters.sum(|c| &c.journal_overflows),
            level_fill,
            memory_cap: self.memory_cap(),
            segments_total: self.geo.segments as u64,
            segments_free: free,
            // ORDERING: Relaxed: informational.
            generation: self.region.u64_at(H_GENERATION).load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::overflow_of;

    fn overflow_total(cache: &Cache) -> u64 {
        (0..cache.geo.buckets[0])
            .map(|home| {
                overflow_of(
                    // ORDERING: Relaxed: the test's cache is quiescent.
                    cache
                        .region
                        .u64_at(crate::index::bucket_off(&cache.geo, 0, home))
                        .load(Ordering::Relaxed),
                )
            })
            .sum()
    }

    /// A file of a layout this build upgrades from opens warm: the header
    /// is upgraded, a recovery pass rebuilds the lock words (a layout-5
    /// word has no deepest-level bits: here they are cleared, as such a
    /// file has them) and the per-namespace counters (zero in both older
    /// layouts), and every key is found again.
    #[test]
    fn files_of_older_layouts_are_upgraded_in_place() {
        for version in crate::layout::UPGRADES_FROM {
            upgrade_from(version);
        }
    }

    fn upgrade_from(version: u32) {
        use crate::layout::{static_checksum, H_CHECKSUM, H_VERSION, WRITER_SLOT_BYTES};
        let dir = tempfile::tempdir().unwrap();
        let cfg = CacheConfig {
            path: dir.path().join("c"),
            max_memory: 8 << 20,
            ..CacheConfig::default()
        };
        let n = 100_000u32;
        let stored = {
            let (cache, _) = Cache::open(cfg.clone()).unwrap();
            let mut h = cache.handle().unwrap();
            for i in 0..n {
                h.set_namespace((i % 3) as u8);
                h.set(&i.to_le_bytes(), b"v", None).unwrap();
            }
            drop(h);
            assert!(
                overflow_total(&cache) > 0,
                "some keys must live outside their homes"
            );
            if version == 5 {
                for home in 0..cache.geo.buckets[0] {
                    let word = cache
                        .region
                        .u64_at(crate::index::bucket_off(&cache.geo, 0, home));
                    // ORDERING: Relaxed: the test's cache is quiescent.
                    word.store(word.load(Ordering::Relaxed) & !(7 << 45), Ordering::Relaxed);
                }
            }
            // Neither older layout has the namespaces' counters.
            for slot in 0..MAX_WRITERS {
                for off in (W_NS_KEYS..WRITER_SLOT_BYTES).step_by(4) {
                    // ORDERING: Relaxed: the test's cache is quiescent.
                    cache.writer_u32(slot, off).store(0, Ordering::Relaxed);
                }
            }
            cache.close();
            cache.len()
        };
        {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&cfg.path)
                .unwrap();
            let len = file.metadata().unwrap().len() as usize;
            let region = Region::map(&file, len).unwrap();
            // ORDERING: Relaxed: nothing else has the file open.
            region.u32_at(H_VERSION).store(version, Ordering::Relaxed);
            // ORDERING: Relaxed, as above.
            region
                .u32_at(H_CHECKSUM)
                .store(static_checksum(&region), Ordering::Relaxed);
        }
        let (cache, report) = Cache::open(cfg).unwrap();
        assert!(report.warm && !report.clean, "{version}: {report:?}");
        assert_eq!(cache.len(), stored);
        let mut h = cache.handle().unwrap();
        let found = (0..n)
            .filter(|i| {
                h.set_namespace((i % 3) as u8);
                h.peek(&i.to_le_bytes(), |_| ()).is_some()
            })
            .count() as u64;
        assert_eq!(
            found, stored,
            "{version}: every key of the upgraded file is found"
        );
        let per_namespace: u64 = (0..3)
            .map(|ns| cache.namespace_counts(ns).expect("counted").0)
            .sum();
        assert_eq!(
            per_namespace, stored,
            "{version}: the namespaces are recounted"
        );
        assert!(cache.namespace_counts(1).unwrap().0 > 0);
        cache.audit().unwrap();
    }

    /// The per-home overflow counts return to zero when the keys outside
    /// their homes are deleted (a leak would only cost speed; an undercount
    /// would hide keys, so both directions are checked).
    #[test]
    fn overflow_counts_follow_inserts_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = CacheConfig {
            path: dir.path().join("c"),
            max_memory: 8 << 20,
            ..CacheConfig::default()
        };
        let (cache, _) = Cache::open(cfg).unwrap();
        let mut h = cache.handle().unwrap();
        let n = 100_000u32;
        for i in 0..n {
            h.set(&i.to_le_bytes(), b"", None).unwrap();
        }
        let stored = cache.len();
        assert!(
            overflow_total(&cache) > 0,
            "some keys must live outside their homes"
        );
        let found = (0..n)
            .filter(|i| h.peek(&i.to_le_bytes(), |_| ()).is_some())
            .count() as u64;
        assert_eq!(found, stored, "every stored key is found");
        for i in 0..n {
            h.delete(&i.to_le_bytes());
        }
        assert_eq!(cache.len(), 0);
        assert_eq!(overflow_total(&cache), 0);
    }
}

// The journal's crash tests attach and write through handles: they live
// here, where the store already knows the handle (no module cycle).
#[cfg(test)]
mod journal_tests;
