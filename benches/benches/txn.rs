//! Transactions (three keys written atomically, as MULTI + 3 SET + EXEC or
//! a 3-key script) in one thread and in two, each thread on its own keys:
//! the engine's optimistic transactions take no global lock, so two
//! threads should do nearly twice the work. Beside it, the same three
//! inserts under one global `Mutex<HashMap>` (one transaction at a time,
//! Redis's model). Times are per transaction of all threads together
//! (wall time / total transactions): "2t" at half of "1t" is perfect
//! scaling.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use citadel_benches::{cache_for, keys, parallel, scatter};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const VALUE: [u8; 32] = [b'v'; 32];
const KEYS: usize = 1_000_000;

fn transactions(c: &mut Criterion) {
    let (cache, _dir) = cache_for(KEYS);
    let keys = keys(KEYS);
    let half = KEYS / 2;
    // Thread `id` uses only its half of the keys: disjoint transactions.
    let key = |id: usize, i: u64| &keys[id * half + scatter(i, half)];
    let mut g = c.benchmark_group("txn_3_keys_disjoint");
    for t in [1, 2] {
        g.bench_function(BenchmarkId::new("citadel", format!("{t}t")), |b| {
            b.iter_custom(|iters| {
                parallel(t, iters, |id, it| {
                    let mut h = cache.handle().unwrap();
                    for i in 0..it {
                        let (k1, k2, k3) = (key(id, i * 3), key(id, i * 3 + 1), key(id, i * 3 + 2));
                        loop {
                            h.txn_begin(&[k1, k2, k3]);
                            for k in [k1, k2, k3] {
                                h.set(k, &VALUE, None).unwrap();
                            }
                            if h.txn_commit().expect("the bench cache has room") {
                                break;
                            }
                        }
                    }
                })
            })
        });
        let map = Mutex::new(HashMap::<Vec<u8>, Vec<u8>>::new());
        g.bench_function(
            BenchmarkId::new("global-mutex-hashmap", format!("{t}t")),
            |b| {
                b.iter_custom(|iters| {
                    parallel(t, iters, |id, it| {
                        for i in 0..it {
                            let mut m = map.lock().unwrap();
                            for j in 0..3 {
                                m.insert(key(id, i * 3 + j).to_vec(), VALUE.to_vec());
                            }
                        }
                    })
                })
            },
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = transactions
}
criterion_main!(benches);
