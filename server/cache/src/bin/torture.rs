//! `citadel-cache-torture PATH MAX_MEMORY THREADS [keys|groups|edits]`: writes,
//! overwrites, deletes and expires keys in a cache file from several
//! threads until killed. Every value carries a checksum of its key (see the
//! crash test), so after a `kill -9` any torn or misplaced value can be
//! detected.
//!
//! `groups` mode writes groups of keys (`group:G:K`, 2 to 32 keys each)
//! together, by one multi-key update or one transaction, with one
//! generation number in every value; a group that shows two generations
//! after a crash was torn.
//!
//! `edits` mode edits editable values (`edit:K`) in place
//! (`Changes::edit`, `citadel_cache::checked_editable`), deletes and
//! rewrites some, and reads them (so compaction moves them): after a
//! crash every one must verify.

use std::sync::Arc;

use citadel_cache::{Cache, CacheConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = match args.get(4).map(String::as_str) {
        _ if args.len() != 4 && args.len() != 5 => None,
        None | Some("keys") => Some(hammer as fn(&Arc<Cache>, u64)),
        Some("groups") => Some(hammer_groups as fn(&Arc<Cache>, u64)),
        Some("edits") => Some(hammer_edits as fn(&Arc<Cache>, u64)),
        Some(_) => None,
    };
    let Some(mode) = mode else {
        eprintln!("usage: citadel-cache-torture PATH MAX_MEMORY_BYTES THREADS [keys|groups|edits]");
        std::process::exit(2);
    };
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
            std::thread::spawn(move || mode(&cache, t))
        })
        .collect();
    // The test kills this process a random time after this line: a kill
    // before the cache was even open would test nothing (and on a loaded
    // machine that start can take longer than the test's whole wait).
    println!("ready");
    for w in workers {
        let _ = w.join();
    }
}

/// A per-thread xorshift stream.
struct Rng(u64);

impl Rng {
    fn new(thread: u64) -> Rng {
        Rng(citadel_cache::unix_millis() ^ (thread + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Groups in `groups` mode; group G has `2 + G % 31` keys.
const GROUPS: u64 = 2000;

fn hammer_groups(cache: &Arc<Cache>, thread: u64) {
    let mut h = cache.handle().expect("handle");
    let mut rng = Rng::new(thread);
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for round in 1u64.. {
        let x = rng.next();
        h.set_clock(citadel_cache::unix_millis());
        let group = x % GROUPS;
        keys.clear();
        keys.extend((0..2 + group % 31).map(|k| format!("group:{group}:{k}").into_bytes()));
        let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        // Unique across threads: a tear never hides behind an equal number.
        let generation = round << 8 | thread;
        // Short values: most of the time goes to publishing, where a kill
        // would tear a group without the journal.
        let len = 16 + (x >> 20) as usize % 32;
        let values: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| citadel_cache::checked_value::make(k, generation, len))
            .collect();
        match (x >> 40) % 20 {
            0 => {
                let _ = h.update(&keys, |_, ch| (0..keys.len()).for_each(|i| ch.delete(i)));
            }
            1..=6 => {
                h.txn_begin(&keys);
                for (k, v) in keys.iter().zip(&values) {
                    let _ = h.set(k, v, None);
                }
                let _ = h.txn_commit();
            }
            _ => {
                let _ = h.update(&keys, |_, ch| {
                    for (i, v) in values.iter().enumerate() {
                        ch.put(i, &[v], None)?;
                    }
                    Ok::<_, citadel_cache::WriteError>(())
                });
            }
        }
        if round.is_multiple_of(10_000) {
            h.maintain();
        }
    }
}

fn hammer(cache: &Arc<Cache>, thread: u64) {
    let mut h = cache.handle().expect("handle");
    let mut rng = Rng::new(thread);
    let mut round = 0u64;
    loop {
        let x = rng.next();
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

/// Keys in `edits` mode.
const EDITED: u64 = 2000;

fn hammer_edits(cache: &Arc<Cache>, thread: u64) {
    use citadel_cache::{checked_editable, PutOptions};
    let mut h = cache.handle().expect("handle");
    let mut rng = Rng::new(thread);
    let mut copy = Vec::new();
    let fresh = PutOptions {
        editable: true,
        ..PutOptions::default()
    };
    for round in 1u64.. {
        let x = rng.next();
        h.set_clock(citadel_cache::unix_millis());
        let key = format!("edit:{}", x % EDITED);
        let key = key.as_bytes();
        match (x >> 32) % 50 {
            0 => {
                h.delete(key);
            }
            1..=9 => {
                let _ = h.get(key, |_| ());
            }
            _ => {
                let _ = h.update(&[key], |items, ch| {
                    if let Some(item) = &items[0] {
                        copy.clear();
                        item.write_value_to(&mut copy);
                        let writes = checked_editable::next_edit(key, &copy, x >> 16);
                        let writes: Vec<(usize, &[u8])> = writes
                            .iter()
                            .flatten()
                            .map(|(at, bytes)| (*at, bytes.as_slice()))
                            .collect();
                        if !writes.is_empty() && ch.edit(0, item, &writes).is_ok() {
                            return Ok(());
                        }
                    }
                    ch.put_with(0, &[&checked_editable::make(key)[..]], fresh)
                });
            }
        }
        if round.is_multiple_of(10_000) {
            h.maintain();
        }
    }
}
