//! Crash consistency: a writer process is killed with SIGKILL at random points
//! in the middle of writes, many times; after each kill the file is attached
//! again and every key is read back. No torn or misplaced value may be served,
//! and no multi-key write may be half applied.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use std::time::Duration;

use citadel_cache::{Cache, CacheHandle};
use common::{value_matches, TempCache};

const MEMORY: u64 = 32 << 20;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the torture writer on `t` in `mode` with `threads` threads, lets
/// it run for `ms.0` plus up to `ms.1` milliseconds and kills it with SIGKILL.
fn run_and_kill(t: &TempCache, mode: &str, threads: u32, rng: &mut u64, ms: (u64, u64)) {
    let mut child = start_writer(t, mode, threads);
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    std::thread::sleep(Duration::from_millis(ms.0 + *rng % ms.1));
    child.0.kill().expect("SIGKILL");
    child.0.wait().unwrap();
}

/// The torture writer, once it has the cache open (the random wait counts
/// from then, not from its launch). The tests of this file run in one
/// process: a sibling test's child, between its fork and its exec, holds
/// a copy of every descriptor this process has open, this test's cache
/// file and its lock among them, so a writer started just after this test
/// closed the cache may find it still locked; it is started again then.
/// Any other failure to start fails the test with the writer's message.
fn start_writer(t: &TempCache, mode: &str, threads: u32) -> KillOnDrop {
    let log = t.path.with_extension("torture.log");
    for _ in 0..50 {
        let child = Command::new(env!("CARGO_BIN_EXE_citadel-cache-torture"))
            .args([
                t.path.to_str().unwrap(),
                &MEMORY.to_string(),
                &threads.to_string(),
                mode,
            ])
            .stderr(std::fs::File::create(&log).expect("torture log"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start torture writer");
        let mut child = KillOnDrop(child);
        let mut ready = String::new();
        let stdout = child.0.stdout.take().expect("torture stdout");
        BufReader::new(stdout)
            .read_line(&mut ready)
            .expect("torture ready line");
        if ready.trim() == "ready" {
            return child;
        }
        let status = child.0.wait().map(|s| s.to_string()).unwrap_or_default();
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            said.contains("in use by another process"),
            "the torture writer did not start ({status}): {said}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the cache file stayed locked after the writer was killed");
}

/// Every key the cache serves (found by SCAN) with its value.
fn all_values(h: &mut CacheHandle) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut keys = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = h.scan(cursor, 500, |item| keys.push(item.key().to_vec()));
        if cursor == 0 {
            break;
        }
    }
    keys.into_iter()
        .filter_map(|key| {
            let value = h.get(&key, |item| {
                let mut v = Vec::new();
                item.write_value_to(&mut v);
                v
            })?;
            Some((key, value))
        })
        .collect()
}

/// Writes after recovery work; every other round shuts down cleanly.
fn write_and_maybe_close(cache: &Cache, mut h: CacheHandle, round: u32) {
    h.set(
        b"after-crash",
        &common::value_for(b"after-crash", round as u64, 64),
        None,
    )
    .unwrap();
    drop(h);
    if round.is_multiple_of(2) {
        cache.close();
    }
}

#[test]
fn kill_9_mid_write_never_serves_torn_values() {
    let t = TempCache::new();
    let mut rng = 0x1234_5678u64;
    let mut verified = 0u64;
    for round in 0..12u32 {
        run_and_kill(&t, "keys", 2, &mut rng, (150, 400));
        let (cache, report) = t.open(MEMORY);
        assert!(report.warm && !report.clean, "round {round}: {report:?}");
        let mut h = cache.handle().unwrap();
        h.set_clock(citadel_cache::unix_millis());
        let values = all_values(&mut h);
        assert!(
            !values.is_empty(),
            "round {round}: the writer wrote nothing?"
        );
        for (key, value) in &values {
            assert!(
                value_matches(key, value),
                "round {round}: torn or wrong value for {}",
                String::from_utf8_lossy(key)
            );
            verified += 1;
        }
        write_and_maybe_close(&cache, h, round);
    }
    assert!(verified > 1000, "only {verified} values verified");
}

/// Groups of keys are written together (one multi-key update or one
/// transaction, one generation in every value of the group); after each
/// kill, no group may show two generations: all of a write or none of it.
/// (A group may miss keys: eviction drops single keys, as it may.)
#[test]
fn kill_9_mid_multi_key_write_never_tears_a_group() {
    let t = TempCache::new();
    let mut rng = 0x9876_5432u64;
    const ROUNDS: u32 = 30;
    let (mut groups_checked, mut replayed) = (0u64, 0u64);
    // Many short rounds, four threads (each kill catches four writes at
    // random points): without the journal this finds a tear in most runs.
    for round in 0..ROUNDS {
        run_and_kill(&t, "groups", 4, &mut rng, (50, 150));
        let (cache, report) = t.open(MEMORY);
        assert!(report.warm && !report.clean, "round {round}: {report:?}");
        replayed += report.rolled_back + report.rolled_forward;
        let mut h = cache.handle().unwrap();
        h.set_clock(citadel_cache::unix_millis());
        let mut generations: HashMap<Vec<u8>, Vec<(Vec<u8>, u64)>> = HashMap::new();
        for (key, value) in all_values(&mut h) {
            let Some(group) = key.strip_prefix(b"group:") else {
                continue;
            };
            assert!(
                value_matches(&key, &value),
                "round {round}: torn or wrong value for {}",
                String::from_utf8_lossy(&key)
            );
            let group = group.split(|&b| b == b':').next().unwrap().to_vec();
            let generation = u64::from_le_bytes(value[8..16].try_into().unwrap());
            generations
                .entry(group)
                .or_default()
                .push((key, generation));
        }
        assert!(!generations.is_empty(), "round {round}: nothing written?");
        for (group, keys) in &generations {
            assert!(
                keys.iter().all(|(_, g)| *g == keys[0].1),
                "round {round}: group {} torn across the crash ({report:?}): {:?}",
                String::from_utf8_lossy(group),
                keys.iter()
                    .map(|(k, g)| (String::from_utf8_lossy(k), g))
                    .collect::<Vec<_>>()
            );
        }
        groups_checked += generations.len() as u64;
        write_and_maybe_close(&cache, h, round);
    }
    eprintln!("{groups_checked} groups checked, {replayed} interrupted writes replayed");
    assert!(
        groups_checked > 1000,
        "only {groups_checked} groups checked"
    );
}

/// Editable values are edited in place (`Changes::edit`: bytes below a
/// front, then the unused descriptor, then the selector), deleted,
/// rewritten and read (compaction moves them) by four threads; after each
/// kill every one served is its old or its new state: the selected
/// descriptor whole and matching its payload, and its check (which leaves
/// the region out) still holding.
#[test]
fn kill_9_mid_in_place_edit_leaves_the_old_or_the_new_state() {
    let t = TempCache::new();
    let mut rng = 0x5151_7373u64;
    let (mut verified, mut edited) = (0u64, 0u64);
    for round in 0..16u32 {
        run_and_kill(&t, "edits", 4, &mut rng, (80, 250));
        let (cache, report) = t.open(MEMORY);
        assert!(report.warm && !report.clean, "round {round}: {report:?}");
        let mut h = cache.handle().unwrap();
        h.set_clock(citadel_cache::unix_millis());
        for (key, value) in all_values(&mut h) {
            if !key.starts_with(b"edit:") {
                continue;
            }
            let state = citadel_cache::checked_editable::verify(&key, &value);
            let Some(edits) = state else {
                panic!(
                    "round {round}: torn in-place edit of {}",
                    String::from_utf8_lossy(&key)
                );
            };
            verified += 1;
            edited += u64::from(edits > 0);
        }
        cache.audit().unwrap();
        write_and_maybe_close(&cache, h, round);
    }
    eprintln!("{verified} editable values verified, {edited} of them edited");
    assert!(
        verified > 1000 && edited > 500,
        "{verified} verified, {edited} edited"
    );
}
