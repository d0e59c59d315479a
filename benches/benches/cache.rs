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
use citadel_cache::Cache;
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
    let mut map = shared.into_inner().unwrap();

    // New keys (beyond the prefilled ones) and deletes, then put them back untimed.
    let mut g = c.benchmark_group(format!("set_new_and_delete/{n}"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("citadel-set-new/1t", |b| {
        let mut h = cache.handle().unwrap();
        b.iter_custom(|iters| {
            let iters = iters.min(n as u64);
            let start = Instant::now();
            for k in &absent[..iters as usize] {
                h.set(k, &VALUE, None).unwrap();
            }
            let took = start.elapsed();
            for k in &absent[..iters as usize] {
                h.delete(k);
            }
            took
        })
    });
    g.bench_function("hashmap-set-new/1t", |b| {
        b.iter_custom(|iters| {
            let iters = iters.min(n as u64);
            let start = Instant::now();
            for k in &absent[..iters as usize] {
                map.insert(k.to_vec(), VALUE.to_vec());
            }
            let took = start.elapsed();
            for k in &absent[..iters as usize] {
                map.remove(&k[..]);
            }
            took
        })
    });
    g.bench_function("citadel-delete/1t", |b| {
        let mut h = cache.handle().unwrap();
        b.iter_custom(|iters| {
            let iters = iters.min(n as u64);
            let start = Instant::now();
            for k in &present[..iters as usize] {
                h.delete(k);
            }
            let took = start.elapsed();
            for k in &present[..iters as usize] {
                h.set(k, &VALUE, None).unwrap();
            }
            took
        })
    });
    g.bench_function("hashmap-delete/1t", |b| {
        b.iter_custom(|iters| {
            let iters = iters.min(n as u64);
            let start = Instant::now();
            for k in &present[..iters as usize] {
                map.remove(&k[..]);
            }
            let took = start.elapsed();
            for k in &present[..iters as usize] {
                map.insert(k.to_vec(), VALUE.to_vec());
            }
            took
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
