//! Concurrency: threads write, overwrite, delete and read overlapping keys in
//! a cache small enough to evict constantly. Every value read must be a
//! complete value written for that key (values carry a checksum of the key).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_cache::WriteError;
use common::{value_for, value_matches, TempCache};

#[test]
fn concurrent_readers_and_writers_never_see_torn_values() {
    let t = TempCache::new();
    let (cache, _) = t.open(24 << 20);
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4u64)
        .map(|id| {
            let (cache, stop, reads, refused) =
                (cache.clone(), stop.clone(), reads.clone(), refused.clone());
            std::thread::spawn(move || {
                let mut h = cache.handle().unwrap();
                let mut x = 0x9E37_79B9u64 * (id + 1);
                let mut round = 0;
                let mut buf = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    round += 1;
                    let key = format!("k{}", (x >> 16) % 5000);
                    match x % 10 {
                        0..=2 => {
                            let len = if x.is_multiple_of(997) {
                                1_200_000
                            } else {
                                16 + (x >> 8) as usize % 3000
                            };
                            match h.set(
                                key.as_bytes(),
                                &value_for(key.as_bytes(), round, len),
                                None,
                            ) {
                                Ok(_) => {}
                                // A chunked value needs two whole free
                                // segments; in a 24-segment cache whose
                                // other segments are all active or hold
                                // chunks of values still being written, the
                                // typed refusal is the right answer.
                                Err(WriteError::OutOfMemory { .. }) if len > 1_000_000 => {
                                    refused.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(e) => panic!("set {key} ({len} bytes): {e:?}"),
                            }
                        }
                        3 => {
                            h.delete(key.as_bytes());
                        }
                        4 => {
                            // Read-modify-write: replace with a longer valid value.
                            h.update(&[key.as_bytes()], |items, ch| {
                                let len = items[0].map(|i| i.value_len()).unwrap_or(16) % 4000 + 16;
                                ch.put(0, &[&value_for(key.as_bytes(), round, len)], None)
                            })
                            .unwrap()
                            .unwrap();
                        }
                        _ => {
                            let got = h.get(key.as_bytes(), |item| {
                                buf.clear();
                                item.write_value_to(&mut buf);
                            });
                            if got.is_some() {
                                assert!(
                                    value_matches(key.as_bytes(), &buf),
                                    "torn value for {key}"
                                );
                                reads.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("no thread panicked");
    }
    let stats = cache.stats();
    println!(
        "validated {} reads; {} large writes refused; {stats:?}",
        reads.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
    assert!(reads.load(Ordering::Relaxed) > 10_000);
    assert!(
        stats.evictions > 0,
        "the test must run under eviction pressure"
    );
}
