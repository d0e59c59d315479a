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

/// A value that carries a checksum of its key, so any torn or misplaced value is detectable.
pub fn value_for(key: &[u8], round: u64, len: usize) -> Vec<u8> {
    let sum = xxh(key) ^ round;
    let mut v = Vec::with_capacity(len.max(16));
    v.extend_from_slice(&sum.to_le_bytes());
    v.extend_from_slice(&round.to_le_bytes());
    let mut x = sum | 1;
    while v.len() < len.max(16) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}

/// True when `value` is a well-formed `value_for(key, round, _)` for some round.
pub fn value_matches(key: &[u8], value: &[u8]) -> bool {
    if value.len() < 16 {
        return false;
    }
    let round = u64::from_le_bytes(value[8..16].try_into().unwrap());
    value == value_for(key, round, value.len()).as_slice()
}

fn xxh(bytes: &[u8]) -> u64 {
    // FNV-1a: independent of the cache's own hash.
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
    })
}
