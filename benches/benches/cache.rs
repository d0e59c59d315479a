//! The cache engine next to `std::collections::HashMap<Vec<u8>, Vec<u8>>`
//! doing the same work, at 1M and 10M keys, in one thread and in every thread.
//!
//! Each benchmark reports the time per operation of all threads together
//! (wall time / total operations), so "2t" being half of "1t" means perfect
//! scaling. Multi-threaded HashMap reads share an `Arc<HashMap>` (no lock);
//! multi-threaded HashMap writes go through a `Mutex`, the usual safe way.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use citadel_benches::{cache_for, keys, parallel, scatter};
use citadel_cache::{Cache, CacheHandle};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const VALUE: [u8; 32] = [b'v'; 32];

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn cache_get(cache: &Arc<Cache>, keys: &[[u8; 16]], id: usize, iters: u64, offset: usize) {
    let mut h = cache.handle().unwrap();
    let n = keys.len();
    for i in 0..iters {
        let k = &keys[(scatter(i + id as u64 * 7919, n) + offset) % n];
        black_box(h.get(k, |item| item.value_len()));
    }
}

/// Runs a sample of `iters` timed writes as rounds of at most a tenth of
/// the keys, each undone untimed, cycling through `keys`: every sample
/// times exactly `iters` writes (capping a sample at the number of keys
/// while criterion divided by `iters` under-reported the larger samples,
/// the faster side's more), and every round starts from the fill's state.
/// For new keys, the cache also reclaims (untimed, `maintain`, as a server
/// does every ~100 ms) the segments a round's deleted keys filled: a
/// sample of a million new keys into a cache sized for 1.5M items timed
/// eviction, which the HashMap never does.
struct Rounds<'k> {
    keys: &'k [[u8; 16]],
    round: usize,
    /// `maintain` calls that visit every segment (64 per call).
    sweeps: u64,
}

impl<'k> Rounds<'k> {
    fn new(keys: &'k [[u8; 16]], cache: &Cache) -> Self {
        Rounds {
            keys,
            round: (keys.len() / 10).max(1),
            sweeps: cache.stats().segments_total.div_ceil(64),
        }
    }

    /// Runs `iters` writes as rounds `round(batch) -> time taken`, starting
    /// at key `*at`; returns the sum of the rounds' times.
    fn run(
        &self,
        iters: u64,
        at: &mut usize,
        mut round: impl FnMut(&[[u8; 16]]) -> Duration,
    ) -> Duration {
        let mut left = iters as usize;
        let mut took = Duration::ZERO;
        while left > 0 {
            let len = left.min(self.round).min(self.keys.len() - *at);
            took += round(&self.keys[*at..*at + len]);
            left -= len;
            *at = (*at + len) % self.keys.len();
        }
        took
    }

    /// Frees the segments whose items were all deleted.
    fn reclaim(&self, h: &mut CacheHandle) {
        for _ in 0..self.sweeps {
            h.maintain();
        }
    }
}

/// Times `write` of each key of `batch` into `on`, then runs `undo` over
/// the batch untimed.
fn timed<S>(
    on: &mut S,
    batch: &[[u8; 16]],
    mut write: impl FnMut(&mut S, &[u8; 16]),
    undo: impl FnOnce(&mut S, &[[u8; 16]]),
) -> Duration {
    let start = Instant::now();
    for k in batch {
        write(on, k);
    }
    let took = start.elapsed();
    undo(on, batch);
    took
}

fn bench_size(c: &mut Criterion, n: usize) {
    let all = keys(n * 2);
    let (present, absent) = all.split_at(n);
    let (cache, _dir) = cache_for(n);
    let mut map: HashMap<Vec<u8>, Vec<u8>> = HashMap::with_capacity(n);
    {
        let mut h = cache.handle().unwrap();
        for k in present {
            h.set(k, &VALUE, None).unwrap();
            map.insert(k.to_vec(), VALUE.to_vec());
        }
    }
    let map = Arc::new(map);
    let t = threads();

    let mut g = c.benchmark_group(format!("get_hit/{n}"));
    g.throughput(Throughput::Elements(1));
    for threads in [1, t] {
        g.bench_function(BenchmarkId::new("citadel", format!("{threads}t")), |b| {
            b.iter_custom(|iters| {
                parallel(threads, iters, |id, it| {
                    cache_get(&cache, present, id, it, 0)
                })
            })
        });
        g.bench_function(BenchmarkId::new("hashmap", format!("{threads}t")), |b| {
            b.iter_custom(|iters| {
                parallel(threads, iters, |id, it| {
                    for i in 0..it {
                        black_box(
                            map.get(&present[scatter(i + id as u64 * 7919, n)][..])
                                .map(|v| v.len()),
                        );
                    }
                })
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group(format!("get_miss/{n}"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("citadel/1t", |b| {
        b.iter_custom(|iters| parallel(1, iters, |id, it| cache_get(&cache, absent, id, it, 0)))
    });
    g.bench_function("hashmap/1t", |b| {
        b.iter_custom(|iters| {
            parallel(1, iters, |_, it| {
                for i in 0..it {
                    black_box(map.get(&absent[scatter(i, n)][..]));
                }
            })
        })
    });
    g.finish();

    let mut map = Arc::try_unwrap(map).expect("no other owner");
    // New keys and deletes first, on the fill's state (the overwrites
    // churn the cache into eviction), in rounds undone untimed (`Rounds`).
    let mut g = c.benchmark_group(format!("set_new_and_delete/{n}"));
    g.throughput(Throughput::Elements(1));
    let (new_keys, old_keys) = (Rounds::new(absent, &cache), Rounds::new(present, &cache));
    g.bench_function("citadel-set-new/1t", |b| {
        let mut h = cache.handle().unwrap();
        let mut at = 0;
        b.iter_custom(|iters| {
            new_keys.run(iters, &mut at, |batch| {
                timed(
                    &mut h,
                    batch,
                    |h, k| h.set(k, &VALUE, None).unwrap(),
                    |h, batch| {
                        for k in batch {
                            h.delete(k);
                        }
                        new_keys.reclaim(h);
                    },
                )
            })
        })
    });
    g.bench_function("hashmap-set-new/1t", |b| {
        let mut at = 0;
        b.iter_custom(|iters| {
            new_keys.run(iters, &mut at, |batch| {
                timed(
                    &mut map,
                    batch,
                    |map, k| {
                        map.insert(k.to_vec(), VALUE.to_vec());
                    },
                    |map, batch| {
                        for k in batch {
                            map.remove(&k[..]);
                        }
                    },
                )
            })
        })
    });
    g.bench_function("citadel-delete/1t", |b| {
        let mut h = cache.handle().unwrap();
        let mut at = 0;
        b.iter_custom(|iters| {
            old_keys.run(iters, &mut at, |batch| {
                timed(
                    &mut h,
                    batch,
                    |h, k| {
                        black_box(h.delete(k));
                    },
                    |h, batch| {
                        for k in batch {
                            h.set(k, &VALUE, None).unwrap();
                        }
                    },
                )
            })
        })
    });
    g.bench_function("hashmap-delete/1t", |b| {
        let mut at = 0;
        b.iter_custom(|iters| {
            old_keys.run(iters, &mut at, |batch| {
                timed(
                    &mut map,
                    batch,
                    |map, k| {
                        black_box(map.remove(&k[..]));
                    },
                    |map, batch| {
                        for k in batch {
                            map.insert(k.to_vec(), VALUE.to_vec());
                        }
                    },
                )
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group(format!("set_overwrite/{n}"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("citadel/1t", |b| {
        let mut h = cache.handle().unwrap();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            h.set(&present[scatter(i, n)], &VALUE, None).unwrap()
        })
    });
    g.bench_function("hashmap/1t", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            map.insert(present[scatter(i, n)].to_vec(), VALUE.to_vec())
        })
    });
    let shared = Mutex::new(std::mem::take(&mut map));
    g.bench_function(BenchmarkId::new("citadel", format!("{t}t")), |b| {
        b.iter_custom(|iters| {
            parallel(t, iters, |id, it| {
                let mut h = cache.handle().unwrap();
                for i in 0..it {
                    h.set(&present[scatter(i + id as u64 * 7919, n)], &VALUE, None)
                        .unwrap();
                }
            })
        })
    });
    g.bench_function(BenchmarkId::new("hashmap-mutex", format!("{t}t")), |b| {
        b.iter_custom(|iters| {
            parallel(t, iters, |id, it| {
                for i in 0..it {
                    let k = present[scatter(i + id as u64 * 7919, n)].to_vec();
                    shared.lock().unwrap().insert(k, VALUE.to_vec());
                }
            })
        })
    });
    g.finish();
}

/// A large value's round trip (set, then get into a caller's buffer): 1 MB
/// is stored in one piece, 1 MiB in a chunk segment.
fn bench_large(c: &mut Criterion) {
    let (cache, _dir) = cache_for(0);
    let mut h = cache.handle().unwrap();
    let mut map: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut g = c.benchmark_group("get_large");
    for len in [1_000_000usize, 1 << 20] {
        let value = vec![b'v'; len];
        let mut out = Vec::with_capacity(len);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(BenchmarkId::new("citadel-set-get", len), |b| {
            b.iter(|| {
                h.set(b"large", &value, None).unwrap();
                h.get(b"large", |item| {
                    out.clear();
                    item.write_value_to(&mut out)
                });
                black_box(out.len())
            })
        });
        g.bench_function(BenchmarkId::new("hashmap-set-get", len), |b| {
            b.iter(|| {
                map.insert(b"large".to_vec(), value.clone());
                out.clear();
                out.extend_from_slice(&map[&b"large"[..]]);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

fn cache_vs_hashmap(c: &mut Criterion) {
    let sizes: Vec<usize> = std::env::var("CITADEL_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000_000, 10_000_000]);
    for n in sizes {
        bench_size(c, n);
    }
    bench_large(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = cache_vs_hashmap
}
criterion_main!(benches);
