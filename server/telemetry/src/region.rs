//! The writer: the server's read-write mapping of the region file, opened
//! at startup. A file whose magic, layout version and geometry match is
//! reused (its counters go on from where they were); anything else is
//! replaced by a fresh file (written beside it, then renamed over it, so
//! a reader never sees it half-made or shrink under its mapping).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use memmap2::MmapMut;

use crate::layout::*;
use crate::plugins::PluginEntry;
use crate::slot::{Reason, SlotStats};
use crate::snapshot::Snapshot;
use crate::view::{LayoutError, View};
use crate::words::{as_words_mut, fit_name, get_name, put_bytes, put_name, seq_write, Mapping};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("stats file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// What [`Region::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The file was there with this layout: counters kept.
    Reused,
    /// No usable file: a new one, with the reason the old one was not used.
    Created(String),
}

pub struct Region {
    map: Arc<Mapping>,
    geometry: Geometry,
    at: Offsets,
    path: PathBuf,
    /// Serializes claiming reason slots (startup-time calls).
    naming: Mutex<()>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Region {
    /// Opens (or creates) the region at `path` for a server of `geometry`.
    pub fn open(path: &Path, geometry: Geometry) -> Result<(Arc<Region>, Opened), OpenError> {
        let io_err = |source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        };
        let found = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => Self::check_existing(&file, geometry).map_err(io_err)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err("no file".to_string()),
            Err(e) => return Err(io_err(e)),
        };
        let opened = match found {
            Ok(()) => Opened::Reused,
            Err(why) => {
                Self::create(path, geometry).map_err(io_err)?;
                Opened::Created(why)
            }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err)?;
        // SAFETY: the file is a stats region; other processes map it too
        // and every access to its words is atomic (see `words`).
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(io_err)?;
        let region = Region {
            map: Arc::new(Mapping::new(map)),
            geometry,
            at: geometry.offsets(),
            path: path.to_path_buf(),
            naming: Mutex::new(()),
        };
        region.take_over(opened == Opened::Reused);
        Ok((Arc::new(region), opened))
    }

    /// `Ok(Ok(()))` when the file has exactly this layout.
    fn check_existing(file: &File, geometry: Geometry) -> io::Result<Result<(), String>> {
        if file.metadata()?.len() < (HEADER_WORDS * 8) as u64 {
            return Ok(Err(LayoutError::TooSmall { len: 0 }.to_string()));
        }
        // SAFETY: a read-only look at the header words, through atomics.
        let map = unsafe { memmap2::Mmap::map(file) }?;
        Ok(match View::check(crate::words::as_words(&map)) {
            Ok(v) if v.geometry == geometry => Ok(()),
            Ok(v) => Err(format!(
                "geometry changed: {:?} -> {geometry:?}",
                v.geometry
            )),
            Err(e) => Err(e.to_string()),
        })
    }

    /// A zeroed file of `geometry` with its header, renamed into place.
    fn create(path: &Path, geometry: Geometry) -> io::Result<()> {
        let at = geometry.offsets();
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".new.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.set_len((at.total * 8) as u64)?;
        // SAFETY: a new file nobody else has mapped yet.
        let map = unsafe { MmapMut::map_mut(&file) }?;
        let words = as_words_mut(&map);
        let set = |f: Field, v: usize| words[f as usize].store(v as u64, Relaxed);
        set(Field::Version, LAYOUT_VERSION as usize);
        set(Field::Cores, geometry.cores);
        set(Field::Commands, geometry.commands);
        set(Field::HotKeys, geometry.hot_keys);
        set(Field::InfoBytes, geometry.info_bytes);
        set(Field::Layers, LAYERS);
        set(Field::Reasons, REASONS);
        set(Field::Priorities, PRIORITIES);
        set(Field::LatencyBuckets, LATENCY_BUCKETS);
        set(Field::NamesAt, at.names);
        set(Field::CoresAt, at.cores);
        set(Field::CoreStride, at.core_stride);
        set(Field::HotAt, at.hot);
        set(Field::Plugins, PLUGINS);
        set(Field::PluginVersions, PLUGIN_VERSIONS);
        set(Field::PluginBuckets, PLUGIN_BUCKETS);
        set(Field::PluginsAt, at.plugins);
        set(Field::InfoAt, at.info);
        set(Field::TotalWords, at.total);
        // Last: a file with the magic is a complete header.
        words[Field::Magic as usize].store(MAGIC, Relaxed);
        map.flush()?;
        std::fs::rename(&tmp, path)
    }

    /// This process now writes the region.
    fn take_over(&self, reused: bool) {
        let h = |f: Field| self.header(f);
        h(Field::WriterPid).store(u64::from(std::process::id()), Relaxed);
        h(Field::StartedMs).store(now_ms(), Relaxed);
        h(Field::HeartbeatMs).store(now_ms(), Relaxed);
        if reused {
            h(Field::Reopens).fetch_add(1, Relaxed);
        }
        // A writer that died halfway through a publish left its seqlock odd.
        for seq in [Field::HotSeq, Field::InfoSeq] {
            let s = h(seq).load(Relaxed);
            h(seq).store((s + 1) & !1, Relaxed);
        }
        // Calls the last writer had in flight ended with it.
        crate::plugins::clear_in_flight(self.view().plugin_section());
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn words(&self) -> &[AtomicU64] {
        self.map.words()
    }

    fn view(&self) -> View<'_> {
        View {
            words: self.words(),
            geometry: self.geometry,
            at: self.at,
        }
    }

    fn header(&self, f: Field) -> &AtomicU64 {
        &self.words()[f as usize]
    }

    /// The recording handle of server thread `core` (single writer: that
    /// thread only). `None` past the geometry's cores.
    pub fn core(&self, core: usize) -> Option<SlotStats> {
        (core < self.geometry.cores)
            .then(|| SlotStats::new(self.map.clone(), self.geometry, core, false))
    }

    /// The handle any other thread records through (atomic adds).
    pub fn shared(&self) -> SlotStats {
        SlotStats::new(self.map.clone(), self.geometry, self.geometry.cores, true)
    }

    /// Names command slot `slot` (the server's command table index).
    pub fn name_command(&self, slot: usize, name: &str) {
        if slot < self.geometry.commands {
            put_name(self.view().name_words(slot), name);
        }
    }

    /// Names priority `priority` (0 = highest) for the exposition.
    pub fn name_priority(&self, priority: u8, name: &str) {
        let p = usize::from(priority);
        if p < PRIORITIES {
            let v = self.view();
            put_name(v.name_words(v.priority_index(p)), name);
        }
    }

    /// The slot of shed reason `name` (found, or claimed if new); `None`
    /// when all `REASONS` slots hold other names. Call at startup, not
    /// per request. Names are kept across restarts with the counters.
    pub fn reason(&self, name: &str) -> Option<Reason> {
        let _guard = self.naming.lock().unwrap_or_else(|p| p.into_inner());
        let v = self.view();
        let wanted = fit_name(name, NAME_WORDS);
        let mut free = None;
        for r in 0..REASONS {
            let words = v.name_words(v.reason_index(r));
            match get_name(words) {
                n if n == wanted => return Some(Reason(r)),
                n if n.is_empty() && free.is_none() => free = Some(r),
                _ => {}
            }
        }
        let r = free?;
        put_name(v.name_words(v.reason_index(r)), name);
        Some(Reason(r))
    }

    /// The entries of this server's plugins, `(name, version names)` each,
    /// in its order: an entry that names the plugin already keeps its
    /// counters (per version, by name); others take a free entry, else one
    /// of a plugin this server does not have. `None` past the table (see
    /// `PLUGINS`); versions past `PLUGIN_VERSIONS` are not recorded. Call
    /// once, at startup.
    pub fn plugins(&self, wanted: &[(&str, Vec<&str>)]) -> Vec<Option<PluginEntry>> {
        let _guard = self.naming.lock().unwrap_or_else(|p| p.into_inner());
        crate::plugins::claim(self.view().plugin_section(), &self.map, wanted)
    }

    /// Replaces the hot-key table with `keys` (key, accesses per second),
    /// hottest first; keys are cut to `HOT_KEY_BYTES`. One publisher.
    pub fn publish_hot_keys(&self, keys: &[(&[u8], f64)]) {
        let v = self.view();
        let n = keys.len().min(self.geometry.hot_keys);
        seq_write(v.header(Field::HotSeq), || {
            for (i, (key, rate)) in keys[..n].iter().enumerate() {
                let e = v.hot_entry(i);
                let key = &key[..key.len().min(HOT_KEY_BYTES)];
                e[0].store(key.len() as u64, Relaxed);
                e[1].store(rate.to_bits(), Relaxed);
                put_bytes(&e[2..], key);
            }
            v.header(Field::HotCount).store(n as u64, Relaxed);
        });
    }

    /// Replaces the INFO snapshot (cut to the room there is) and marks
    /// the writer alive. One publisher.
    pub fn publish_info(&self, text: &str) {
        let v = self.view();
        let words = v.info_words();
        let bytes = &text.as_bytes()[..text.len().min(words.len() * 8)];
        seq_write(v.header(Field::InfoSeq), || {
            put_bytes(words, bytes);
            v.header(Field::InfoLen).store(bytes.len() as u64, Relaxed);
        });
        self.heartbeat();
    }

    pub fn heartbeat(&self) {
        self.header(Field::HeartbeatMs).store(now_ms(), Relaxed);
    }

    /// The region's numbers now (what `/metrics` renders).
    pub fn snapshot(&self) -> Snapshot {
        self.view().snapshot()
    }
}
