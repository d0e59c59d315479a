//! `citadel-cache-torture PATH MAX_MEMORY THREADS`: writes, overwrites,
//! deletes and expires keys in a cache file from several threads until
//! killed. Every value carries a checksum of its key (see the crash test),
//! so after a `kill -9` any torn or misplaced value can be detected.

use std::sync::Arc;

use citadel_cache::{Cache, CacheConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: citadel-cache-torture PATH MAX_MEMORY_BYTES THREADS");
        std::process::exit(2);
    }
    let cfg = CacheConfig {
        path: args[1].clone().into(),
        max_memory: args[2].parse().expect("MAX_MEMORY_BYTES"),
        max_value_size: 64 << 20,
        fresh: false,
    };
    let threads: u64 = args[3].parse().expect("THREADS");
    let (cache, report) = Cache::open(cfg).unwrap_or_else(|e| {
        eprintln!("citadel-cache-torture: {e}");
        std::process::exit(1);
    });
    eprintln!("attached: {report:?}");
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || hammer(&cache, t))
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

fn hammer(cache: &Arc<Cache>, thread: u64) {
    let mut h = cache.handle().expect("handle");
    let mut x = citadel_cache::unix_millis() ^ (thread + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut round = 0u64;
    loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        round += 1;
        h.set_clock(citadel_cache::unix_millis());
        let key = format!("key:{}", x % 20_000);
        let len = match x % 1000 {
            0 => 1_500_000 + (x % 1_000_000) as usize,
            1..=50 => 2000,
            _ => 16 + (x % 200) as usize,
        };
        match (x >> 20) % 10 {
            0 => {
                h.delete(key.as_bytes());
            }
            1 => {
                let at = h.now_ms() + 1 + (x >> 30) % 3000;
                let _ = h.set(
                    key.as_bytes(),
                    &citadel_cache::checked_value::make(key.as_bytes(), round, len),
                    Some(at),
                );
            }
            _ => {
                let _ = h.set(
                    key.as_bytes(),
                    &citadel_cache::checked_value::make(key.as_bytes(), round, len),
                    None,
                );
            }
        }
        if round.is_multiple_of(10_000) {
            h.maintain();
        }
    }
}
