//! Transactions over declared keys (`txn_begin` .. `txn_commit`): own
//! writes visible inside, nothing visible outside before the commit, a
//! conflicting writer forces a retry, WATCH versions, and a multi-threaded
//! transfer test whose total never changes.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use citadel_cache::CacheHandle;
use common::TempCache;

fn value(h: &mut CacheHandle, key: &[u8]) -> Option<Vec<u8>> {
    h.get(key, |item| {
        let mut v = Vec::new();
        item.write_value_to(&mut v);
        v
    })
}

fn int(h: &mut CacheHandle, key: &[u8]) -> i64 {
    value(h, key).map_or(0, |v| std::str::from_utf8(&v).unwrap().parse().unwrap())
}

#[test]
fn writes_are_seen_inside_and_published_together() {
    let t = TempCache::new();
    let (cache, _) = t.open(32 << 20);
    let (mut a, mut b) = (cache.handle().unwrap(), cache.handle().unwrap());
    a.set(b"x", b"old", None).unwrap();
    a.txn_begin(&[b"x", b"y", b"x"]);
    a.set(b"x", b"new", None).unwrap();
    a.update(&[b"y", b"x"], |items, ch| {
        let mut v = Vec::new();
        items[1].as_ref().unwrap().write_value_to(&mut v);
        assert_eq!(v, b"new", "a transaction reads its own write");
        assert!(items[0].is_none());
        ch.put(0, &[b"from-", &v[..]], None)
    })
    .unwrap()
    .unwrap();
    assert_eq!(value(&mut a, b"y").as_deref(), Some(&b"from-new"[..]));
    assert!(a.delete(b"x"));
    assert_eq!(value(&mut a, b"x"), None);
    assert_eq!(
        value(&mut b, b"x").as_deref(),
        Some(&b"old"[..]),
        "nothing is visible to others before the commit"
    );
    assert_eq!(value(&mut b, b"y"), None);
    // A key not declared joins the transaction (and publishes with it).
    a.set(b"z", b"late", None).unwrap();
    assert_eq!(value(&mut b, b"z"), None);
    assert_eq!(a.txn_commit(), Ok(true));
    assert!(!a.in_txn());
    assert_eq!(value(&mut b, b"x"), None);
    assert_eq!(value(&mut b, b"y").as_deref(), Some(&b"from-new"[..]));
    assert_eq!(value(&mut b, b"z").as_deref(), Some(&b"late"[..]));
}

#[test]
fn a_conflicting_write_fails_the_commit_and_publishes_nothing() {
    let t = TempCache::new();
    let (cache, _) = t.open(32 << 20);
    let (mut a, mut b) = (cache.handle().unwrap(), cache.handle().unwrap());
    a.txn_begin(&[b"k", b"other"]);
    a.set(b"other", b"1", None).unwrap();
    b.set(b"k", b"theirs", None).unwrap();
    assert_eq!(a.txn_commit(), Ok(false));
    assert_eq!(value(&mut b, b"other"), None);
    assert_eq!(value(&mut b, b"k").as_deref(), Some(&b"theirs"[..]));
    // Aborting drops the writes; the handle works normally afterwards.
    a.txn_begin(&[b"k"]);
    a.set(b"k", b"mine", None).unwrap();
    a.txn_abort();
    assert_eq!(value(&mut a, b"k").as_deref(), Some(&b"theirs"[..]));
    a.set(b"k", b"plain", None).unwrap();
    assert_eq!(value(&mut b, b"k").as_deref(), Some(&b"plain"[..]));
}

#[test]
fn a_watch_fails_after_any_change_to_the_key() {
    let t = TempCache::new();
    let (cache, _) = t.open(32 << 20);
    let (mut a, mut b) = (cache.handle().unwrap(), cache.handle().unwrap());
    a.set(b"w", b"1", None).unwrap();
    let watch = a.watch(b"w");
    a.txn_begin(&[b"w"]);
    assert!(a.txn_watches_hold([watch]), "unchanged");
    a.txn_abort();
    for change in 0..3 {
        let watch = a.watch(b"w");
        match change {
            0 => b.set(b"w", b"2", None).unwrap(),
            1 => assert!(b.delete(b"w")),
            _ => b.set(b"w", b"3", None).unwrap(),
        }
        a.txn_begin(&[b"w"]);
        assert!(!a.txn_watches_hold([watch]), "change {change} missed");
        a.txn_abort();
    }
}

/// A write that leaves the value as it was (`Changes::rewrite_unchanged`)
/// writes no item but counts as a write: a WATCH fails, the change log
/// has it. Several keys or a transaction refuse it (the caller writes).
#[test]
fn an_unchanged_rewrite_is_a_write_without_an_item() {
    let t = TempCache::new();
    let (cache, _) = t.open(32 << 20);
    let (mut a, mut b) = (cache.handle().unwrap(), cache.handle().unwrap());
    a.set(b"w", b"same", None).unwrap();
    let watch = a.watch(b"w");
    b.record_changes(true);
    let asked = b.update(&[b"w"], |items, ch| {
        assert!(items[0].is_some());
        ch.rewrite_unchanged(0)
    });
    assert_eq!(asked, Ok(true));
    let mut logged = Vec::new();
    assert!(!b.drain_changes(|key, change, _| logged.push((key.to_vec(), change))));
    let written = citadel_cache::KeyChange::Written {
        ttl: false,
        created: false,
    };
    assert_eq!(logged, vec![(b"w".to_vec(), written)]);
    a.txn_begin(&[b"w"]);
    assert!(
        !a.txn_watches_hold([watch]),
        "the rewrite moved the version"
    );
    a.txn_abort();
    assert_eq!(value(&mut a, b"w"), Some(b"same".to_vec()));
    // Refused: several keys, a transaction, a key already put.
    let two = b.update(&[b"w", b"x"], |_, ch| ch.rewrite_unchanged(0));
    assert_eq!(two, Ok(false));
    b.txn_begin(&[b"w"]);
    assert_eq!(
        b.update(&[b"w"], |_, ch| ch.rewrite_unchanged(0)),
        Ok(false)
    );
    b.txn_abort();
    let put_first = b.update(&[b"w"], |_, ch| {
        ch.put(0, &[&b"new"[..]], None).unwrap();
        ch.rewrite_unchanged(0)
    });
    assert_eq!(put_first, Ok(false));
    assert_eq!(value(&mut a, b"w"), Some(b"new".to_vec()));
}

/// Threads move amounts between accounts in transactions (read both,
/// write both); the sum never changes and every committed transfer counts.
#[test]
fn concurrent_transfers_keep_the_total() {
    const ACCOUNTS: u64 = 16;
    let t = TempCache::new();
    let (cache, _) = t.open(32 << 20);
    let mut h = cache.handle().unwrap();
    for i in 0..ACCOUNTS {
        h.set(format!("acct{i}").as_bytes(), b"100", None).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (done, conflicts) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let threads: Vec<_> = (0..4u64)
        .map(|id| {
            let (cache, stop) = (cache.clone(), stop.clone());
            let (done, conflicts) = (done.clone(), conflicts.clone());
            std::thread::spawn(move || {
                let mut h = cache.handle().unwrap();
                let mut x = 0x2545_F491u64 * (id + 7);
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (from, to) = (x % ACCOUNTS, (x >> 8) % ACCOUNTS);
                    if from == to {
                        continue;
                    }
                    let (kf, kt) = (format!("acct{from}"), format!("acct{to}"));
                    loop {
                        h.txn_begin(&[kf.as_bytes(), kt.as_bytes()]);
                        let (a, b) = (int(&mut h, kf.as_bytes()), int(&mut h, kt.as_bytes()));
                        let amount = (x >> 20) as i64 % 7;
                        h.set(kf.as_bytes(), (a - amount).to_string().as_bytes(), None)
                            .unwrap();
                        h.set(kt.as_bytes(), (b + amount).to_string().as_bytes(), None)
                            .unwrap();
                        if h.txn_commit() == Ok(true) {
                            break;
                        }
                        conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let checker = {
        let (cache, stop) = (cache.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut h = cache.handle().unwrap();
            let keys: Vec<String> = (0..ACCOUNTS).map(|i| format!("acct{i}")).collect();
            let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
            let mut checks = 0;
            while !stop.load(Ordering::Relaxed) {
                // A read-only transaction over all accounts is a consistent snapshot.
                h.txn_begin(&keys);
                let sum: i64 = keys.iter().map(|k| int(&mut h, k)).sum();
                if h.txn_commit() == Ok(true) {
                    assert_eq!(
                        sum,
                        100 * ACCOUNTS as i64,
                        "a half-applied transfer was seen"
                    );
                    checks += 1;
                }
            }
            checks
        })
    };
    std::thread::sleep(std::time::Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let checks = checker.join().unwrap();
    let total: i64 = (0..ACCOUNTS)
        .map(|i| int(&mut h, format!("acct{i}").as_bytes()))
        .sum();
    println!(
        "{} transfers, {} conflicts, {checks} consistent snapshots",
        done.load(Ordering::Relaxed),
        conflicts.load(Ordering::Relaxed)
    );
    assert_eq!(total, 100 * ACCOUNTS as i64);
    assert!(done.load(Ordering::Relaxed) > 1000);
    assert!(checks > 0);
}

/// A transaction that names thousands of keys it did not declare (a
/// script writing a whole batch): every one publishes with it, reads
/// inside see its own writes, and a key read midway that another writer
/// changes before the commit still forces the retry, however late the
/// key joined.
#[test]
fn thousands_of_keys_declared_midway_publish_together_and_conflict() {
    let t = TempCache::new();
    let (cache, _) = t.open(64 << 20);
    let (mut a, mut b) = (cache.handle().unwrap(), cache.handle().unwrap());
    let key = |i: u32| format!("batch:{i}").into_bytes();
    b.set(&key(2_500), b"before", None).unwrap();
    a.txn_begin(&[b"first"]);
    for i in 0..5_000 {
        a.set(&key(i), i.to_string().as_bytes(), None).unwrap();
    }
    for i in (0..5_000).step_by(7) {
        assert_eq!(int(&mut a, &key(i)), i64::from(i), "own write of {i}");
    }
    assert_eq!(
        value(&mut b, &key(1)),
        None,
        "nothing visible before the commit"
    );
    assert_eq!(a.txn_commit(), Ok(true));
    for i in 0..5_000 {
        assert_eq!(int(&mut b, &key(i)), i64::from(i));
    }
    // A conflict on a key that joined late: its home's version is checked.
    a.txn_begin(&[b"first"]);
    for i in 0..3_000 {
        assert_eq!(int(&mut a, &key(i)), i64::from(i));
    }
    a.set(b"out", b"1", None).unwrap();
    b.set(&key(2_999), b"changed", None).unwrap();
    assert_eq!(
        a.txn_commit(),
        Ok(false),
        "the read of a late key was changed"
    );
    assert_eq!(value(&mut b, b"out"), None);
}

/// A transaction writing keys it then leaves alone (as a script filling a
/// big collection finalises page after page) while it rewrites a few
/// hundred others in a scattered order, far past what the cache holds:
/// the last write of some key lands in every segment it fills, and those
/// segments were held until the commit (out of memory). Now the pending
/// writes move out of sparse held segments (txn/held.rs), so it commits
/// without evicting the keys written before it, and every key, the
/// expiring ones and a large (chunked) one too, publishes its last value.
#[test]
fn scattered_rewrites_far_past_the_cache_size_commit_without_evicting() {
    let t = TempCache::new();
    let (cache, _) = t.open(32 << 20);
    let (mut a, mut b) = (cache.handle().unwrap(), cache.handle().unwrap());
    let before = |i: u32| format!("before:{i}").into_bytes();
    for i in 0..100 {
        b.set(&before(i), b"kept", None).unwrap();
    }
    const KEYS: u64 = 400;
    let key = |i: u64| format!("spread:{i}").into_bytes();
    let written = |i: u64, round: u64, len: usize| {
        let mut v = format!("{i}:{round}:").into_bytes();
        v.resize(len, b'.');
        v
    };
    let large = |round: u64| {
        let mut v = vec![b'L'; 3 << 20];
        v[..8].copy_from_slice(&round.to_le_bytes());
        v
    };
    let expire_at = citadel_cache::unix_millis() + 3_600_000;
    a.txn_begin(&[b"large"]);
    let mut last = vec![None; KEYS as usize];
    let mut x = 1u64;
    for round in 0..40_000u64 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let i = (x >> 33) % KEYS;
        let ttl = i.is_multiple_of(5).then_some(expire_at);
        a.set(&key(i), &written(i, round, 1_500), ttl).unwrap();
        last[i as usize] = Some(round);
        if round % 4 == 0 {
            let n = round / 4;
            let v = written(n, round, 300);
            a.set(format!("left:{n}").as_bytes(), &v, None).unwrap();
        }
        if round % 10_000 == 0 {
            a.set(b"large", &large(round), None).unwrap();
        }
    }
    assert_eq!(value(&mut a, b"large").map(|v| v.len()), Some(3 << 20));
    assert_eq!(a.txn_commit(), Ok(true));
    for (i, round) in last.iter().enumerate() {
        let i = i as u64;
        let want = round.map(|r| written(i, r, 1_500));
        assert_eq!(value(&mut b, &key(i)), want, "key {i}");
        let ttl = b.get(&key(i), |item| item.expire_at());
        let with_ttl = i.is_multiple_of(5) && round.is_some();
        assert_eq!(ttl.flatten(), with_ttl.then_some(expire_at));
    }
    for n in 0..10_000 {
        let v = value(&mut b, format!("left:{n}").as_bytes());
        assert_eq!(v, Some(written(n, n * 4, 300)), "left:{n}");
    }
    assert!(value(&mut b, b"large") == Some(large(30_000)));
    for i in 0..100 {
        assert_eq!(value(&mut b, &before(i)).as_deref(), Some(&b"kept"[..]));
    }
    assert_eq!(cache.stats().evictions, 0);
}
