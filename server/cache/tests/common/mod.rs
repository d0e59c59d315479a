//! Shared helpers for the cache engine's tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use citadel_cache::{AttachReport, Cache, CacheConfig};

/// A cache file under the system temp dir, removed on drop.
pub struct TempCache {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TempCache {
    pub fn new() -> TempCache {
        let dir = tempfile::tempdir_in(shm_or_tmp()).expect("temp dir");
        TempCache {
            path: dir.path().join("test.cache"),
            _dir: dir,
        }
    }

    pub fn config(&self, max_memory: u64) -> CacheConfig {
        CacheConfig {
            path: self.path.clone(),
            max_memory,
            max_value_size: 64 << 20,
            fresh: false,
        }
    }

    pub fn open(&self, max_memory: u64) -> (Arc<Cache>, AttachReport) {
        Cache::open(self.config(max_memory)).expect("open cache")
    }
}

fn shm_or_tmp() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

#[allow(unused_imports)]
pub use citadel_cache::checked_value::{make as value_for, matches as value_matches};
