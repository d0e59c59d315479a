//! Shared fixtures for the benchmarks in benches/benches/.

pub mod nodes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_cache::{Cache, CacheConfig};

/// `n` distinct 16-byte keys ("key:" + 12 digits), as the memory target uses.
pub fn keys(n: usize) -> Vec<[u8; 16]> {
    (0..n)
        .map(|i| {
            let mut k = [0u8; 16];
            k.copy_from_slice(format!("key:{i:012}").as_bytes());
            k
        })
        .collect()
}

/// A cache file in /dev/shm (removed with the returned guard) sized for `n`
/// items of 48 bytes with room to spare: 96 bytes of file per item, 1.5x the
/// ~64 bytes an item needs all-in, as an operator would size it.
pub fn cache_for(n: usize) -> (Arc<Cache>, tempfile::TempDir) {
    // CITADEL_BENCH_DIR picks another filesystem, e.g. a tmpfs mounted
    // with huge=always to see what huge pages are worth.
    let base = std::env::var("CITADEL_BENCH_DIR").unwrap_or_else(|_| "/dev/shm".into());
    let dir = tempfile::tempdir_in(base)
        .or_else(|_| tempfile::tempdir())
        .expect("temp dir");
    let cfg = CacheConfig {
        path: dir.path().join("bench.cache"),
        max_memory: (n as u64 * 96).max(64 << 20),
        max_value_size: 64 << 20,
        fresh: true,
    };
    let (cache, _) = Cache::open(cfg).expect("open bench cache");
    (cache, dir)
}

/// A cheap index sequence that visits keys in a scattered order.
#[inline]
pub fn scatter(i: u64, n: usize) -> usize {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize % n
}

/// Runs `work(thread, iters)` on `t` threads; returns wall time per op of
/// all threads together (so "2t" at half of "1t" is perfect scaling).
pub fn parallel(t: usize, iters: u64, work: impl Fn(usize, u64) + Sync) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for id in 0..t {
            let work = &work;
            s.spawn(move || work(id, iters));
        }
    });
    start.elapsed() / t as u32
}
