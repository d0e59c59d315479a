//! kill -9 in the middle of writes to collections: after the restart every
//! collection is whole (its old or its new state, never a mix). One test
//! per type, each through [`kill9_during`]:
//!
//! * hashes: each write is one HSET that changes several fields and
//!   stores, in the same command, a checksum of the whole hash and a
//!   version; after recovery every hash's checksum matches its fields and
//!   its version is the last acknowledged one or the one in flight;
//! * lists (thousands of elements: paged): each list holds a contiguous
//!   run of integers, pushed at the tail and popped at the head; after
//!   recovery each list is still one run, the acknowledged one or the
//!   one the write in flight made;
//! * sorted sets: each ZADD adds a version's members and moves the
//!   `_ver` member to that version's score; after recovery every version
//!   up to `_ver`'s score is whole and none past it exists;
//! * paged hashes and sets: a checksum and version per write (hash), all
//!   or none of a write's members (set).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use citadel_tests::redis::{self, Commands};
use citadel_tests::Server;

const WRITERS: usize = 2;
const HASHES_PER_WRITER: usize = 6;

/// FNV-1a over the sorted field/value pairs, excluding the bookkeeping fields.
fn checksum(fields: &BTreeMap<String, String>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (f, v) in fields.iter().filter(|(f, _)| !f.starts_with('_')) {
        for b in f.bytes().chain([0]).chain(v.bytes()).chain([1]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// A seeded xorshift stream: a writer's choices replay exactly.
fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// One writer: owns its hashes, so it knows each one's exact content.
/// Returns the last acknowledged version of each hash.
fn write_until_killed(url: String, writer: usize, stop: Arc<AtomicBool>) -> Vec<u64> {
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    let mut models = vec![BTreeMap::<String, String>::new(); HASHES_PER_WRITER];
    let mut acked = vec![0u64; HASHES_PER_WRITER];
    let mut next = xorshift(writer as u64 + 1);
    while !stop.load(Ordering::Relaxed) {
        let h = (next() % HASHES_PER_WRITER as u64) as usize;
        // Hash 0 of each writer grows big (thousands of fields).
        let span = if h == 0 { 4000 } else { 50 };
        let mut cmd = redis::cmd("HSET");
        cmd.arg(format!("crash:{writer}:{h}"));
        for _ in 0..8 {
            let (f, v) = (format!("f{}", next() % span), format!("v{}", next()));
            cmd.arg(&f).arg(&v);
            models[h].insert(f, v);
        }
        let version = acked[h] + 1;
        cmd.arg("_sum").arg(checksum(&models[h]).to_string());
        cmd.arg("_ver").arg(version.to_string());
        match cmd.query::<i64>(&mut c) {
            Ok(_) => acked[h] = version,
            Err(_) => break,
        }
    }
    acked
}

/// Runs `write(url, writer, stop)` on `WRITERS` threads, kills the server
/// with -9 in the middle of their writes, restarts it, and returns it
/// with what each writer reports (what it saw acknowledged).
fn kill9_during<T: Send + 'static>(
    write: fn(String, usize, Arc<AtomicBool>) -> T,
) -> (Server, Vec<T>) {
    let mut server = Server::start(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (url, stop) = (server.url(), stop.clone());
            std::thread::spawn(move || write(url, w, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let acked = writers.into_iter().map(|w| w.join().unwrap()).collect();
    server.restart(false);
    (server, acked)
}

#[test]
fn kill9_mid_hash_writes_leaves_every_hash_whole() {
    let (server, acked) = kill9_during(write_until_killed);
    let mut c = server.client();
    let mut checked = 0;
    for (w, versions) in acked.iter().enumerate() {
        for (h, &version) in versions.iter().enumerate() {
            let key = format!("crash:{w}:{h}");
            let fields: BTreeMap<String, String> = c.hgetall(&key).unwrap();
            if version == 0 && fields.is_empty() {
                continue;
            }
            let stored: u64 = fields["_sum"].parse().unwrap();
            assert_eq!(stored, checksum(&fields), "{key} is torn");
            let ver: u64 = fields["_ver"].parse().unwrap();
            assert!(
                ver == version || ver == version + 1,
                "{key}: version {ver}, acked {version}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no hash was written before the kill");
    let big: usize = c.hlen("crash:0:0").unwrap();
    assert!(big > 100, "the big hash has {big} fields");
}

const LISTS_PER_WRITER: usize = 3;

/// A list of the integers `head..tail`.
type Run = std::ops::Range<u64>;

/// What a list writer saw of each list: the acknowledged run and, if a
/// write was in flight at the kill, the run it would have made.
type ListState = (Run, Option<Run>);

/// One list writer: owns its lists, pushes the next integers at the tail
/// (RPUSH) and pops from the head (LPOP count), checking what it pops.
/// Half the pushes and pops are of 1-3 elements: those edit the root in
/// place (no spill or refill), the others mostly write a new root.
fn push_pop_until_killed(url: String, writer: usize, stop: Arc<AtomicBool>) -> Vec<ListState> {
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    let mut runs: Vec<ListState> = vec![(0..0, None); LISTS_PER_WRITER];
    let mut next = xorshift(writer as u64 + 11);
    while !stop.load(Ordering::Relaxed) {
        let l = (next() % LISTS_PER_WRITER as u64) as usize;
        let key = format!("crashlist:{writer}:{l}");
        let run = runs[l].0.clone();
        // Grow to thousands first, then push and pop about evenly.
        let push = run.end - run.start < 3000 || next().is_multiple_of(2);
        let few = next().is_multiple_of(2);
        let most = |n: u64| if few { 3 } else { n };
        let reply = if push {
            let n = 1 + next() % most(200);
            let after = run.start..run.end + n;
            runs[l].1 = Some(after.clone());
            let mut cmd = redis::cmd("RPUSH");
            cmd.arg(&key)
                .arg((run.end..after.end).collect::<Vec<u64>>());
            cmd.query::<u64>(&mut c).map(|len| {
                assert_eq!(len, after.end - after.start, "{key} length");
            })
        } else {
            let n = 1 + next() % most(150);
            let after = (run.start + n).min(run.end)..run.end;
            runs[l].1 = Some(after.clone());
            let popped: redis::RedisResult<Option<Vec<u64>>> =
                redis::cmd("LPOP").arg(&key).arg(n).query(&mut c);
            popped.map(|popped| {
                let want: Vec<u64> = (run.start..after.start).collect();
                assert_eq!(popped.unwrap_or_default(), want, "{key} popped");
            })
        };
        match reply {
            Ok(()) => runs[l] = (runs[l].1.take().expect("in flight"), None),
            Err(_) => break,
        }
    }
    runs
}

#[test]
fn kill9_mid_list_pushes_and_pops_leaves_every_list_one_run() {
    let (server, states) = kill9_during(push_pop_until_killed);
    let mut c = server.client();
    let mut longest = 0;
    for (w, lists) in states.iter().enumerate() {
        for (l, (acked, in_flight)) in lists.iter().enumerate() {
            let key = format!("crashlist:{w}:{l}");
            let got: Vec<u64> = c.lrange(&key, 0, -1).unwrap();
            let run = got.first().map_or(0..0, |&a| a..a + got.len() as u64);
            assert_eq!(got, run.clone().collect::<Vec<_>>(), "{key} is not one run");
            let same = |want: &Run| want.is_empty() && run.is_empty() || *want == run;
            assert!(
                same(acked) || in_flight.as_ref().is_some_and(same),
                "{key}: {run:?}, acked {acked:?}, in flight {in_flight:?}"
            );
            longest = longest.max(got.len());
        }
    }
    assert!(longest > 1000, "the lists grew to {longest} elements only");
}

const ZSETS_PER_WRITER: usize = 3;
/// Members each ZADD adds (plus `_ver`).
const ZSET_BATCH: u64 = 4;
/// Members (score 0) each sorted set starts with: well past the paging
/// threshold (1,024).
const ZSET_PAD: usize = 3000;

/// One sorted-set writer: ZADD of version v's members (score v) and
/// `_ver` moved to score v, in one command; returns each zset's last
/// acknowledged version.
fn zadd_until_killed(url: String, writer: usize, stop: Arc<AtomicBool>) -> Vec<u64> {
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    let mut acked = vec![0u64; ZSETS_PER_WRITER];
    let mut next = xorshift(writer as u64 + 29);
    // Past the paging threshold from the first write: every ZADD after it
    // edits the paged form (root, member index and tree pages).
    for z in 0..ZSETS_PER_WRITER {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(format!("crashz:{writer}:{z}"));
        for p in 0..ZSET_PAD {
            cmd.arg(0).arg(format!("pad{p:05}"));
        }
        if cmd.query::<i64>(&mut c).is_err() {
            return acked;
        }
    }
    while !stop.load(Ordering::Relaxed) {
        let z = (next() % ZSETS_PER_WRITER as u64) as usize;
        let version = acked[z] + 1;
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(format!("crashz:{writer}:{z}"));
        for k in 0..ZSET_BATCH {
            cmd.arg(version).arg(format!("m{version}-{k}"));
        }
        cmd.arg(version).arg("_ver");
        match cmd.query::<i64>(&mut c) {
            Ok(_) => acked[z] = version,
            Err(_) => break,
        }
    }
    acked
}

#[test]
fn kill9_mid_zadds_leaves_every_sorted_set_whole() {
    let (server, acked) = kill9_during(zadd_until_killed);
    let mut c = server.client();
    let mut longest = 0;
    for (w, versions) in acked.iter().enumerate() {
        for (z, &version) in versions.iter().enumerate() {
            let key = format!("crashz:{w}:{z}");
            let members: Vec<(String, u64)> = c.zrange_withscores(&key, 0, -1).unwrap();
            let stored = members
                .iter()
                .find(|(m, _)| m == "_ver")
                .map_or(0, |(_, s)| *s);
            assert!(
                stored == version || stored == version + 1,
                "{key}: version {stored}, acked {version}"
            );
            let want: Vec<(String, u64)> = (1..=stored)
                .flat_map(|v| (0..ZSET_BATCH).map(move |k| (format!("m{v}-{k}"), v)))
                .collect();
            let pads = members.iter().filter(|(m, _)| m.starts_with("pad")).count();
            assert!(
                pads == 0 && version == 0 || pads == ZSET_PAD,
                "{key}: {pads} pads"
            );
            let got: Vec<(String, u64)> = members
                .into_iter()
                .filter(|(m, _)| m != "_ver" && !m.starts_with("pad"))
                .collect();
            let mut want_sorted = want.clone();
            want_sorted.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
            assert_eq!(got, want_sorted, "{key} is torn");
            longest = longest.max(got.len());
        }
    }
    assert!(longest > 0, "no sorted set was written before the kill");
}

/// Paged hashes and sets: a writer per collection, each command one
/// atomic change of a big (paged) value; after kill -9 and restart each
/// is its state after the last acknowledged command or the one in flight.
#[test]
fn kill9_mid_paged_hash_and_set_writes_leaves_each_whole() {
    const BASE: usize = 5_000;
    let mut server = Server::start(&[]);
    let mut c = server.client();
    let mut hash = BTreeMap::new();
    for start in (0..BASE).step_by(1_000) {
        let mut hset = redis::cmd("HSET");
        let mut sadd = redis::cmd("SADD");
        hset.arg("crash:bigh");
        sadd.arg("crash:bigs");
        for i in start..start + 1_000 {
            hset.arg(format!("base{i}")).arg("0");
            sadd.arg(format!("base{i}"));
            hash.insert(format!("base{i}"), "0".to_string());
        }
        let _: () = hset.query(&mut c).unwrap();
        let _: () = sadd.query(&mut c).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let hash_writer = {
        let (url, stop, mut model) = (server.url(), stop.clone(), hash.clone());
        std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            let mut acked = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let version = acked + 1;
                let mut cmd = redis::cmd("HSET");
                cmd.arg("crash:bigh");
                for k in 0..8u64 {
                    let field = format!("f{}", (version * 7919 + k * 104_729) % 20_000);
                    let value = format!("v{version}");
                    cmd.arg(&field).arg(&value);
                    model.insert(field, value);
                }
                cmd.arg("_sum").arg(checksum(&model).to_string());
                cmd.arg("_ver").arg(version.to_string());
                match cmd.query::<i64>(&mut c) {
                    Ok(_) => acked = version,
                    Err(_) => break,
                }
            }
            acked
        })
    };
    let set_writer = {
        let (url, stop) = (server.url(), stop.clone());
        std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            let mut acked = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let version = acked + 1;
                // Each command adds one version's three members (pages
                // split meanwhile): all of them or none.
                let members: Vec<String> = (0..3).map(|k| format!("v{version}-{k}")).collect();
                let added = redis::cmd("SADD")
                    .arg("crash:bigs")
                    .arg(&members)
                    .query::<i64>(&mut c);
                match added {
                    Ok(_) => acked = version,
                    Err(_) => break,
                }
            }
            acked
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let (hash_acked, set_acked) = (hash_writer.join().unwrap(), set_writer.join().unwrap());
    server.restart(false);
    let mut c = server.client();
    let fields: BTreeMap<String, String> = c.hgetall("crash:bigh").unwrap();
    assert!(
        fields.len() >= BASE,
        "the big hash lost fields: {}",
        fields.len()
    );
    if hash_acked > 0 {
        let stored: u64 = fields["_sum"].parse().unwrap();
        assert_eq!(stored, checksum(&fields), "the big hash is torn");
        let ver: u64 = fields["_ver"].parse().unwrap();
        assert!(
            ver == hash_acked || ver == hash_acked + 1,
            "hash version {ver}, acked {hash_acked}"
        );
    }
    let members: std::collections::HashSet<String> = c.smembers("crash:bigs").unwrap();
    let present = |v: u64| {
        (0..3)
            .filter(|k| members.contains(&format!("v{v}-{k}")))
            .count()
    };
    for version in 1..=set_acked + 1 {
        let n = present(version);
        assert!(
            n == 0 || n == 3,
            "version {version} of the set is torn ({n} of 3)"
        );
        assert!(
            version > set_acked || n == 3,
            "acked version {version} of the set is lost"
        );
    }
    let card: usize = c.scard("crash:bigs").unwrap();
    assert_eq!(card, members.len());
    assert!(
        hash_acked > 0 && set_acked > 0,
        "nothing was written before the kill"
    );
}
