//! SAVE, BGSAVE and BGREWRITEAOF's state. Citadel's data is its
//! memory-mapped cache file (plus the functions' side file), already in
//! the page cache after every write: a crashed process, even kill -9,
//! loses nothing. A save makes it durable on the storage (msync of the
//! mapping, fsync of the side file), so power loss or a kernel crash
//! does not lose it either. Background saves run on a thread of their
//! own, never on a server core; one at a time, as Redis runs one child.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use citadel_cache::Cache;

use crate::script::Store as Scripts;

/// What a background save is for: BGSAVE or BGREWRITEAOF. Both make the
/// same files durable; INFO reports them apart, as Redis does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveKind {
    Rdb = 1,
    Aof = 2,
}

/// Why a background save was not started now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyWith {
    /// One of the same kind is running.
    Same,
    /// One of the other kind is running; it was scheduled to follow
    /// when `scheduled`.
    Other { scheduled: bool },
}

const IDLE: u8 = 0;

/// One kind's outcome counters (INFO persistence).
#[derive(Debug)]
struct Outcomes {
    ok: AtomicBool,
    /// Seconds the last one took; -1 before the first.
    last_secs: AtomicI64,
    count: AtomicU64,
    scheduled: AtomicBool,
}

impl Default for Outcomes {
    fn default() -> Outcomes {
        Outcomes {
            ok: AtomicBool::new(true),
            last_secs: AtomicI64::new(-1),
            count: AtomicU64::new(0),
            scheduled: AtomicBool::new(false),
        }
    }
}

/// The process's save state: shared by every core and the save thread.
#[derive(Debug)]
pub struct Saves {
    /// Unix seconds of the last completed save (start-up counts, as
    /// Redis's load does).
    last_save: AtomicU64,
    /// The kind running now (`SaveKind as u8`), or `IDLE`.
    running: AtomicU8,
    /// Held while a save is claimed or scheduled and while the save
    /// thread decides whether to stop: a request that finds a save of
    /// the other kind running and schedules itself can then never land
    /// between the thread's last look at `scheduled` and its going idle
    /// (a scheduled save that nobody runs).
    handover: Mutex<()>,
    /// Unix milliseconds the running one started.
    started_ms: AtomicU64,
    /// Writes counted when the last completed save started.
    writes_at_save: AtomicU64,
    rdb: Outcomes,
    aof: Outcomes,
}

impl Default for Saves {
    fn default() -> Saves {
        Saves {
            last_save: AtomicU64::new(unix_ms() / 1000),
            running: AtomicU8::new(IDLE),
            handover: Mutex::new(()),
            started_ms: AtomicU64::new(0),
            writes_at_save: AtomicU64::new(0),
            rdb: Outcomes::default(),
            aof: Outcomes::default(),
        }
    }
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Makes the cache file and the functions' side file durable.
pub fn sync_files(cache: &Cache, scripts: &Scripts) -> std::io::Result<()> {
    cache.sync()?;
    scripts.sync_saved()
}

impl Saves {
    /// LASTSAVE: unix seconds of the last completed save.
    pub fn last_save(&self) -> u64 {
        self.last_save.load(Relaxed)
    }

    /// The kind of background save running now, if any.
    pub fn running(&self) -> Option<SaveKind> {
        match self.running.load(Relaxed) {
            1 => Some(SaveKind::Rdb),
            2 => Some(SaveKind::Aof),
            _ => None,
        }
    }

    /// Writes since the last save, given the writes counted so far (the
    /// write commands that answered no error, since start-up).
    pub fn changes_since_save(&self, writes: u64) -> u64 {
        writes.saturating_sub(self.writes_at_save.load(Relaxed))
    }

    /// SAVE, on the calling thread: the files made durable now.
    pub fn save_now(&self, cache: &Cache, scripts: &Scripts, writes: u64) -> std::io::Result<()> {
        sync_files(cache, scripts)?;
        self.completed(writes);
        Ok(())
    }

    fn completed(&self, writes: u64) {
        self.writes_at_save.store(writes, Relaxed);
        self.last_save.store(unix_ms() / 1000, Relaxed);
    }

    fn outcomes(&self, kind: SaveKind) -> &Outcomes {
        match kind {
            SaveKind::Rdb => &self.rdb,
            SaveKind::Aof => &self.aof,
        }
    }

    /// Starts a background save of `kind` on a thread of its own, unless
    /// one runs; with one of the other kind running, `schedule` makes
    /// this one follow it.
    pub fn start(
        self: &Arc<Self>,
        kind: SaveKind,
        schedule: bool,
        files: (Arc<Cache>, Arc<Scripts>),
        writes: u64,
    ) -> Result<(), BusyWith> {
        let handover = self.handover.lock().unwrap_or_else(PoisonError::into_inner);
        let claimed = self
            .running
            .compare_exchange(IDLE, kind as u8, Relaxed, Relaxed);
        match claimed {
            Ok(_) => {}
            Err(now) if now == kind as u8 => return Err(BusyWith::Same),
            Err(_) => {
                if schedule {
                    self.outcomes(kind).scheduled.store(true, Relaxed);
                }
                return Err(BusyWith::Other {
                    scheduled: schedule,
                });
            }
        }
        drop(handover);
        let saves = self.clone();
        let spawned = std::thread::Builder::new()
            .name("citadel-save".into())
            .spawn(move || saves.run(kind, &files, writes));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the background save thread");
            self.outcomes(kind).ok.store(false, Relaxed);
            self.running.store(IDLE, Relaxed);
        }
        Ok(())
    }

    /// The save thread: `kind`, then whatever was scheduled meanwhile.
    fn run(&self, mut kind: SaveKind, files: &(Arc<Cache>, Arc<Scripts>), writes: u64) {
        loop {
            self.started_ms.store(unix_ms(), Relaxed);
            let began = Instant::now();
            let result = sync_files(&files.0, &files.1);
            let out = self.outcomes(kind);
            out.last_secs
                .store(began.elapsed().as_secs() as i64, Relaxed);
            out.count.fetch_add(1, Relaxed);
            out.ok.store(result.is_ok(), Relaxed);
            match result {
                Ok(()) => self.completed(writes),
                Err(e) => tracing::error!(error = %e, ?kind, "background save failed"),
            }
            let next = match kind {
                SaveKind::Rdb => SaveKind::Aof,
                SaveKind::Aof => SaveKind::Rdb,
            };
            let handover = self.handover.lock().unwrap_or_else(PoisonError::into_inner);
            if !self.outcomes(next).scheduled.swap(false, Relaxed) {
                self.running.store(IDLE, Relaxed);
                return;
            }
            // The scheduled one counts from the same writes (it cannot
            // read the statistics): INFO may over-count changes until
            // the next save, never under-count them.
            self.running.store(next as u8, Relaxed);
            drop(handover);
            kind = next;
        }
    }

    /// INFO persistence's fields after `loading`, in Redis 7.0's order.
    pub fn info(&self, writes: u64, out: &mut Vec<(&'static str, String)>) {
        let running = self.running();
        let current = |kind| {
            if running == Some(kind) {
                (unix_ms().saturating_sub(self.started_ms.load(Relaxed)) / 1000) as i64
            } else {
                -1
            }
        };
        let status = |o: &Outcomes| if o.ok.load(Relaxed) { "ok" } else { "err" };
        let flag = |b: bool| if b { "1" } else { "0" }.to_string();
        let rdb = &self.rdb;
        let aof = &self.aof;
        out.extend([
            (
                "rdb_changes_since_last_save",
                self.changes_since_save(writes).to_string(),
            ),
            (
                "rdb_bgsave_in_progress",
                flag(running == Some(SaveKind::Rdb)),
            ),
            ("rdb_last_save_time", self.last_save().to_string()),
            ("rdb_last_bgsave_status", status(rdb).to_string()),
            (
                "rdb_last_bgsave_time_sec",
                rdb.last_secs.load(Relaxed).to_string(),
            ),
            (
                "rdb_current_bgsave_time_sec",
                current(SaveKind::Rdb).to_string(),
            ),
            ("rdb_saves", rdb.count.load(Relaxed).to_string()),
            ("aof_enabled", "0".to_string()),
            (
                "aof_rewrite_in_progress",
                flag(running == Some(SaveKind::Aof)),
            ),
            ("aof_rewrite_scheduled", flag(aof.scheduled.load(Relaxed))),
            (
                "aof_last_rewrite_time_sec",
                aof.last_secs.load(Relaxed).to_string(),
            ),
            (
                "aof_current_rewrite_time_sec",
                current(SaveKind::Aof).to_string(),
            ),
            ("aof_last_bgrewrite_status", status(aof).to_string()),
            ("aof_rewrites", aof.count.load(Relaxed).to_string()),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_count_from_the_last_save() {
        let saves = Saves::default();
        assert_eq!(saves.changes_since_save(5), 5);
        saves.completed(5);
        assert_eq!(saves.changes_since_save(7), 2);
    }

    #[test]
    fn one_background_save_at_a_time_and_the_other_kind_follows() {
        let saves = Saves::default();
        saves.running.store(SaveKind::Rdb as u8, Relaxed);
        let (cache, scripts) = test_files();
        let files = (cache, scripts);
        let saves = Arc::new(saves);
        assert_eq!(
            saves.start(SaveKind::Rdb, true, files.clone(), 0),
            Err(BusyWith::Same)
        );
        assert_eq!(
            saves.start(SaveKind::Aof, false, files.clone(), 0),
            Err(BusyWith::Other { scheduled: false })
        );
        assert!(!saves.aof.scheduled.load(Relaxed));
        assert_eq!(
            saves.start(SaveKind::Aof, true, files.clone(), 0),
            Err(BusyWith::Other { scheduled: true })
        );
        // The running RDB save, then the scheduled AOF rewrite.
        saves.run(SaveKind::Rdb, &files, 3);
        assert_eq!(saves.running(), None);
        assert_eq!(saves.rdb.count.load(Relaxed), 1);
        assert_eq!(saves.aof.count.load(Relaxed), 1);
        assert!(!saves.aof.scheduled.load(Relaxed));
        assert_eq!(saves.changes_since_save(3), 0);
    }

    fn test_files() -> (Arc<Cache>, Arc<Scripts>) {
        let dir = std::env::temp_dir().join(format!("citadel-saves-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cache");
        let config = citadel_cache::CacheConfig {
            path: path.clone(),
            max_memory: 8 << 20,
            fresh: true,
            ..Default::default()
        };
        let (cache, _) = Cache::open(config).unwrap();
        let scripts = Arc::new(Scripts::new(Some(&path), 1));
        (cache, scripts)
    }
}
