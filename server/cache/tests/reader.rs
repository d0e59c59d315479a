//! `CacheReader`: a read-only reader of a live cache file in another
//! process. The cross-process tests spawn this test binary itself with
//! `ROLE` set (see `child_process`): the writer (as the server opens it,
//! with its flock) and the reader live in different processes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_cache::{Cache, CacheHandle, CacheReader, ReadError, ReaderOpenError, ValueView};
use common::{value_for, value_matches, TempCache};
use xxhash_rust::xxh3::xxh3_64;

const ROLE: &str = "CITADEL_READER_TEST_ROLE";
const PATH: &str = "CITADEL_READER_TEST_PATH";
const MIB: usize = 1 << 20;

/// Keys and value lengths of the cross-process read test.
fn fixture() -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = (0..100)
        .map(|i| (format!("small:{i}"), 16 + i * 13))
        .collect();
    v.push(("medium".into(), 300_000));
    v.push(("chunked:5m".into(), 5 * MIB + 12_345));
    v.push(("chunked:64m".into(), 64 * MIB));
    v
}

fn spawn(role: &str, path: &Path) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(PATH, path)
        .spawn()
        .expect("spawn child test process")
}

fn wait_ok(mut child: Child, what: &str) {
    let status = child.wait().expect("wait for child");
    assert!(status.success(), "{what} child failed: {status}");
}

/// The entry point of the child processes; a no-op in a normal test run.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let path = PathBuf::from(std::env::var(PATH).expect("path"));
    match role.as_str() {
        "read-fixture" => read_fixture(&path),
        "crash-writer" => crash_writer(&path),
        "overwrite-loop" => overwrite_loop(&path),
        other => panic!("unknown role {other}"),
    }
}

/// Reads `len` bytes from `offset` with `read_at`.
fn read(view: &ValueView<'_>, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0xEEu8; len];
    let n = view.read_at(offset, &mut buf);
    buf.truncate(n);
    buf
}

/// Checks a view against the value it must hold: ranges, a full read in
/// pieces, the content hash.
fn check_view(view: &ValueView<'_>, want: &[u8], key: &str) {
    assert_eq!(view.len(), want.len() as u64, "{key}: length");
    let len = want.len();
    if len <= 2000 {
        // Every range of short values; every start with a spread of
        // lengths (around word sizes, and to the end) of longer ones.
        for start in 0..=len {
            let rest = len - start;
            let every: Vec<usize> = if len <= 160 {
                (0..=rest).collect()
            } else {
                [0, 1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200, rest].to_vec()
            };
            for n in every.into_iter().filter(|&n| n <= rest) {
                let end = start + n;
                assert_eq!(
                    read(view, start as u64, n),
                    &want[start..end],
                    "{key}: {start}..{end}"
                );
            }
        }
    } else {
        // Around every chunk boundary, and random ranges.
        for b in (0..=len).step_by(MIB) {
            for (lo, hi) in [(1, 1), (9, 9), (0, 4096), (4093, 17)] {
                let (s, e) = (b.saturating_sub(lo), (b + hi).min(len));
                assert_eq!(read(view, s as u64, e - s), &want[s..e], "{key}: {s}..{e}");
            }
        }
        let mut x = 0x9E37_79B9u64 ^ len as u64;
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let s = (x % len as u64) as usize;
            let e = (s + (x >> 40) as usize % (3 * MIB)).min(len);
            assert_eq!(read(view, s as u64, e - s), &want[s..e], "{key}: {s}..{e}");
        }
    }
    // Whole value in odd-sized pieces; past the end reads nothing.
    for piece in [4096usize, MIB + 7] {
        let mut got = Vec::with_capacity(len);
        let mut buf = vec![0u8; piece];
        loop {
            let n = view.read_at(got.len() as u64, &mut buf);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == want, "{key}: whole value in {piece}-byte pieces");
    }
    assert_eq!(view.read_at(len as u64 + 5, &mut [0u8; 8]), 0);
    assert_eq!(view.content_hash(), Some(xxh3_64(want)), "{key}: hash");
    assert!(view.still_valid(), "{key}: unchanged");
}

fn read_fixture(path: &Path) {
    let reader = CacheReader::open(path).expect("reader opens alongside the server");
    for (key, len) in fixture() {
        let view = reader
            .get(key.as_bytes())
            .expect("not busy")
            .unwrap_or_else(|| panic!("{key} present"));
        check_view(&view, &value_for(key.as_bytes(), 1, len), &key);
    }
    assert!(reader.get(b"absent").unwrap().is_none());
    // The server wrote this one with a TTL already past.
    assert!(reader.get(b"expired").unwrap().is_none());
}

/// The server (this process, with its flock) writes; a reader process reads
/// every value, small and chunked up to the 64 MiB maximum.
#[test]
fn another_process_reads_values_in_place() {
    let t = TempCache::new();
    let (cache, _) = t.open(192 << 20);
    let mut h = cache.handle().unwrap();
    let now = citadel_cache::unix_millis();
    h.set_clock(now);
    for (key, len) in fixture() {
        let value = value_for(key.as_bytes(), 1, len);
        h.set(key.as_bytes(), &value, None).unwrap();
        // The engine's own content hash, streamed over the stored pieces.
        let hash = h.get(key.as_bytes(), |item| item.content_hash());
        assert_eq!(hash, Some(xxh3_64(&value)), "{key}");
    }
    h.set(b"expired", b"gone", Some(now + 50)).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    wait_ok(spawn("read-fixture", &t.path), "reader");
    // The writer is unaffected by the reader.
    h.set(b"after", b"reader", None).unwrap();
    assert_eq!(
        h.get(b"after", |i| i.contiguous().unwrap().to_vec()),
        Some(b"reader".to_vec())
    );
}

#[test]
fn misses_expiry_and_changes_after_get() {
    let t = TempCache::new();
    let (cache, _) = t.open(32 << 20);
    let mut h = cache.handle().unwrap();
    let reader = CacheReader::open(&t.path).unwrap();
    assert!(reader.get(b"nope").unwrap().is_none(), "absent key");

    let now = citadel_cache::unix_millis();
    h.set_clock(now);
    h.set(b"ttl", b"short-lived", Some(now + 150)).unwrap();
    let view = reader.get(b"ttl").unwrap().expect("live before expiry");
    assert_eq!(view.expire_at(), Some(now + 150));
    assert_eq!(read(&view, 0, 64), b"short-lived");
    std::thread::sleep(Duration::from_millis(160));
    assert!(reader.get(b"ttl").unwrap().is_none(), "expired is a miss");

    for big in [false, true] {
        let len = if big { 3 * MIB } else { 100 };
        h.set(b"k", &vec![1u8; len], None).unwrap();
        let view = reader.get(b"k").unwrap().unwrap();
        assert!(view.still_valid());
        assert_eq!(read(&view, 0, len), vec![1u8; len]);
        h.set(b"k", &vec![2u8; len], None).unwrap();
        assert!(!view.still_valid(), "overwritten after get (big: {big})");
        assert_eq!(view.content_hash(), None);
        let view = reader.get(b"k").unwrap().unwrap();
        assert_eq!(read(&view, 0, len), vec![2u8; len]);
        assert!(h.delete(b"k"));
        assert!(!view.still_valid(), "deleted after get (big: {big})");
        assert!(reader.get(b"k").unwrap().is_none());
    }
    // Negative-cache markers are misses, as for every plain read.
    h.update(&[b"neg"], |_, ch| {
        ch.put_with(
            0,
            &[b"".as_slice()],
            citadel_cache::PutOptions {
                negative: true,
                ..Default::default()
            },
        )
    })
    .unwrap()
    .unwrap();
    assert!(reader.get(b"neg").unwrap().is_none());
}

#[test]
fn open_errors_say_why() {
    let t = TempCache::new();
    let dir = t.path.parent().unwrap().to_path_buf();
    let err = |p: &Path| CacheReader::open(p).expect_err("must not open");

    assert!(matches!(
        err(&dir.join("missing")),
        ReaderOpenError::Io { .. }
    ));
    std::fs::write(dir.join("short"), b"hello").unwrap();
    let e = err(&dir.join("short"));
    assert!(matches!(e, ReaderOpenError::NotACacheFile { .. }), "{e}");
    std::fs::write(dir.join("other"), vec![7u8; 64 << 10]).unwrap();
    let e = err(&dir.join("other"));
    assert!(
        matches!(
            e,
            ReaderOpenError::NotACacheFile {
                reason: "bad magic",
                ..
            }
        ),
        "{e}"
    );

    let (cache, _) = t.open(16 << 20);
    cache.handle().unwrap().set(b"k", b"v", None).unwrap();
    let image = std::fs::read(&t.path).unwrap();
    std::fs::write(dir.join("truncated"), &image[..image.len() / 2]).unwrap();
    let e = err(&dir.join("truncated"));
    assert!(matches!(e, ReaderOpenError::Geometry { .. }), "{e}");
    let mut other_version = image.clone();
    other_version[8] ^= 0x40;
    std::fs::write(dir.join("version"), &other_version).unwrap();
    let e = err(&dir.join("version"));
    assert!(
        matches!(e, ReaderOpenError::LayoutMismatch { expected, .. } if expected != 0),
        "{e}"
    );
    let mut bad_sum = image;
    bad_sum[24] ^= 1; // the segment count, covered by the checksum
    std::fs::write(dir.join("checksum"), &bad_sum).unwrap();
    let e = err(&dir.join("checksum"));
    assert!(matches!(e, ReaderOpenError::Geometry { .. }), "{e}");
    assert!(e.to_string().contains("checksum"), "{e}");
}

/// A reader never holds the lock: the server attaches (and re-attaches)
/// while readers have the file open, and keeps writing.
#[test]
fn readers_never_block_the_server() {
    let t = TempCache::new();
    let (cache, _) = t.open(16 << 20);
    cache.handle().unwrap().set(b"k", b"one", None).unwrap();
    cache.close();
    drop(cache);

    let reader = CacheReader::open(&t.path).unwrap();
    let early = CacheReader::open(&t.path).unwrap();
    let (cache, report) = t.open(16 << 20);
    assert!(report.warm && report.clean, "{report:?}");
    let mut h = cache.handle().unwrap();
    assert_eq!(read(&reader.get(b"k").unwrap().unwrap(), 0, 9), b"one");
    h.set(b"k", b"two", None).unwrap();
    assert_eq!(read(&early.get(b"k").unwrap().unwrap(), 0, 9), b"two");
    // Another reader opened while the server holds the file.
    let late = CacheReader::open(&t.path).unwrap();
    assert_eq!(read(&late.get(b"k").unwrap().unwrap(), 0, 9), b"two");
    drop(h);
    cache.close();
    drop(cache);
    // And the next attach works with all three readers still open.
    let (cache, report) = t.open(16 << 20);
    assert!(report.clean);
    cache.handle().unwrap().set(b"k", b"three", None).unwrap();
    assert_eq!(read(&reader.get(b"k").unwrap().unwrap(), 0, 9), b"three");
}

const CRASH_KEYS: u64 = 2000;

/// Opens the file as the server does (with its flock), in a child process.
fn open_server(path: &Path, max_memory: u64) -> (Arc<Cache>, CacheHandle) {
    let (cache, _) = Cache::open(citadel_cache::CacheConfig {
        path: path.to_path_buf(),
        max_memory,
        ..Default::default()
    })
    .expect("open as the server");
    let h = cache.handle().unwrap();
    (cache, h)
}

fn crash_writer(path: &Path) {
    let (_cache, mut h) = open_server(path, 32 << 20);
    for i in 0..CRASH_KEYS {
        let key = format!("crash:{i}");
        let len = if i % 500 == 7 { 2 * MIB } else { 40 };
        h.set(key.as_bytes(), &value_for(key.as_bytes(), 3, len), None)
            .unwrap();
    }
    // Dies without a clean shutdown (no close, no destructors).
    std::process::exit(0);
}

fn read_all(reader: &CacheReader, key: &str) -> Option<Vec<u8>> {
    let view = reader.get(key.as_bytes()).expect("not busy")?;
    let v = read(&view, 0, view.len() as usize);
    assert!(view.still_valid());
    Some(v)
}

/// After a writer died without a clean shutdown a reader still reads its
/// values; the server's recovery runs while the reader is open, and
/// invalidates views taken before it.
#[test]
fn reads_after_a_server_crash_and_across_recovery() {
    let t = TempCache::new();
    wait_ok(spawn("crash-writer", &t.path), "crash writer");
    let reader = CacheReader::open(&t.path).expect("open after a crash");
    for i in 0..CRASH_KEYS {
        let key = format!("crash:{i}");
        let v = read_all(&reader, &key).unwrap_or_else(|| panic!("{key}"));
        assert!(value_matches(key.as_bytes(), &v), "{key}");
    }
    let before = reader.get(b"crash:7").unwrap().unwrap();
    let (cache, report) = t.open(32 << 20);
    assert!(report.warm && !report.clean, "{report:?}");
    assert!(!before.still_valid(), "recovery invalidates earlier views");
    for i in 0..CRASH_KEYS {
        let key = format!("crash:{i}");
        let v = read_all(&reader, &key).unwrap_or_else(|| panic!("{key}"));
        assert!(value_matches(key.as_bytes(), &v), "{key}");
    }
    cache
        .handle()
        .unwrap()
        .set(b"crash:1", b"new", None)
        .unwrap();
    assert_eq!(read_all(&reader, "crash:1").unwrap(), b"new");
}

/// A writer killed with SIGKILL mid-write (possibly holding a bucket lock):
/// whatever a reader returns is a whole, right value; a lock the dead writer
/// left is `Busy`, never a hang.
#[test]
fn reads_a_file_whose_writer_was_killed_mid_write() {
    let t = TempCache::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_citadel-cache-torture"))
        .args([t.path.to_str().unwrap(), &(32u64 << 20).to_string(), "2"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start torture writer");
    std::thread::sleep(Duration::from_millis(400));
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let mut reader = CacheReader::open(&t.path).unwrap();
    reader.set_busy_timeout(Duration::from_millis(5));
    let (mut found, mut busy) = (0, 0);
    for i in 0..20_000 {
        let key = format!("key:{i}");
        match reader.get(key.as_bytes()) {
            Ok(Some(view)) => {
                let v = read(&view, 0, view.len() as usize);
                assert!(view.still_valid());
                assert!(value_matches(key.as_bytes(), &v), "{key}");
                found += 1;
            }
            Ok(None) => {}
            Err(ReadError::Busy { .. }) => busy += 1,
        }
    }
    assert!(found > 0, "the writer wrote nothing?");
    assert!(busy < 50, "only keys of homes a dead writer held: {busy}");
}

const STRESS_MS: u64 = 2500;

/// Overwrites one key with values whose bytes all equal a counter, of
/// changing lengths (some chunked), in a small cache (constant reuse).
fn overwrite_loop(path: &Path) {
    let (cache, mut h) = open_server(path, 16 << 20);
    let started = Instant::now();
    let mut c = 0u64;
    let mut value = Vec::new();
    while started.elapsed() < Duration::from_millis(STRESS_MS) {
        c += 1;
        let len = if c.is_multiple_of(64) {
            MIB + (c as usize * 7919) % MIB
        } else {
            1 + (c as usize * 7919) % 6000
        };
        value.clear();
        value.resize(len, c as u8);
        let _ = h.set(b"stress", &value, None);
        // Churn other keys so segments are evicted and reused under the reader.
        let _ = h.set(
            format!("filler:{}", c % 4096).as_bytes(),
            &value[..len.min(3000)],
            None,
        );
    }
    drop(h);
    cache.close();
}

#[test]
fn validated_reads_are_never_torn_under_overwrites() {
    let t = TempCache::new();
    let mut child = spawn("overwrite-loop", &t.path);
    let deadline = Instant::now() + Duration::from_secs(10);
    let reader = loop {
        // The file exists (and has a header) once the writer formatted it.
        match CacheReader::open(&t.path) {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("writer never made the file: {e}"),
        }
    };
    let (mut valid, mut invalid, mut hashed) = (0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    while child.try_wait().unwrap().is_none() {
        let Ok(Some(view)) = reader.get(b"stress") else {
            continue;
        };
        buf.resize(view.len() as usize, 0);
        assert_eq!(view.read_at(0, &mut buf), buf.len());
        if !view.still_valid() {
            invalid += 1;
            continue;
        }
        valid += 1;
        let first = buf[0];
        assert!(
            buf.iter().all(|&b| b == first),
            "a validated read of {} bytes is torn",
            buf.len()
        );
        if buf.len() < 10_000 {
            if let Some(hash) = view.content_hash() {
                assert_eq!(hash, xxh3_64(&vec![first; buf.len()]));
                hashed += 1;
            }
        }
    }
    assert!(child.wait().unwrap().success(), "writer failed");
    eprintln!("validated reads {valid}, invalidated {invalid}, hashed {hashed}");
    assert!(valid > 100, "too few validated reads: {valid}");
}
