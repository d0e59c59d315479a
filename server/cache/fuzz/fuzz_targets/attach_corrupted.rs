//! Attaching a corrupted cache file: a valid small image (small and large
//! values, TTLs, left unclean so crash recovery runs) is patched with the
//! input's `(offset:u16, len:u8, bytes)` records, attached, and then every
//! key is read, the key space scanned, a few keys written and read back,
//! and everything flushed. It must never panic, hang or read out of
//! bounds; a clean `OpenError` is fine.
//!
//! Values are `checked_value`s, so a wrong value is recognisable. The item
//! check is 16 bits by design: a patch inside a key's own item (or its
//! chunks) may pass it once in 65,536 tries, so a wrong value for such a
//! key is tolerated; any other wrong value is a bug.
#![no_main]

use std::ops::Range;
use std::path::PathBuf;
use std::sync::OnceLock;

use citadel_cache::{checked_value, Cache, CacheConfig};
use libfuzzer_sys::fuzz_target;

const MEMORY: u64 = 32 << 10;
/// Offset of the clean-shutdown flag in the header (layout.rs, H_CLEAN).
const H_CLEAN: usize = 136;

struct Key {
    key: Vec<u8>,
    value: Vec<u8>,
    expire_at: Option<u64>,
    /// Bytes of the image that hold this key's item (and chunks).
    ranges: Vec<Range<usize>>,
}

struct Base {
    image: Vec<u8>,
    keys: Vec<Key>,
    path: PathBuf,
}

fn config(path: &PathBuf) -> CacheConfig {
    CacheConfig {
        path: path.clone(),
        max_memory: MEMORY,
        max_value_size: 1 << 20,
        fresh: false,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Writes the keys into a fresh cache and takes the file without closing
/// it (clean flag 0), as a crash would leave it.
fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
        let pid = std::process::id();
        let path = PathBuf::from(format!("{dir}/citadel-fuzz-{pid}.cache"));
        let mut cfg = config(&path);
        cfg.fresh = true;
        let (cache, _) = Cache::open(cfg).expect("fresh cache");
        let mut h = cache.handle().unwrap();
        let hour = citadel_cache::unix_millis() + 3_600_000;
        let mut keys = Vec::new();
        for i in 0..14u64 {
            let key = format!("fuzz-key-{i:02}").into_bytes();
            let len = match i {
                12 => 5000,
                13 => 3000,
                _ => 16 + (i as usize * 37) % 150,
            };
            let value = checked_value::make(&key, 1, len);
            let expire_at = (i % 3 == 1).then_some(hour);
            h.set(&key, &value, expire_at).expect("base image write");
            keys.push(Key { key, value, expire_at, ranges: Vec::new() });
        }
        drop(h);
        drop(cache);
        let image = std::fs::read(&path).expect("read base image");
        for k in &mut keys {
            // Generous bounds: up to a full header before the key.
            let at = find(&image, &k.key).expect("key in image");
            k.ranges.push(at.saturating_sub(32)..at + k.key.len() + k.value.len().min(4096));
            for piece in k.value.chunks(4096) {
                if let Some(at) = find(&image, piece) {
                    k.ranges.push(at..at + piece.len());
                }
            }
        }
        Base { image, keys, path }
    })
}

/// Applies the input's patches; returns the patched ranges.
fn patch(image: &mut [u8], mut input: &[u8]) -> Vec<Range<usize>> {
    let mut patched = Vec::new();
    while let [o0, o1, len, rest @ ..] = input {
        let off = u16::from_le_bytes([*o0, *o1]) as usize % image.len();
        let n = (*len as usize).min(rest.len()).min(image.len() - off);
        image[off..off + n].copy_from_slice(&rest[..n]);
        patched.push(off..off + n);
        input = &rest[n..];
    }
    patched
}

fn overlaps(a: &[Range<usize>], b: &[Range<usize>]) -> bool {
    a.iter().any(|x| b.iter().any(|y| x.start < y.end && y.start < x.end))
}

fn read(h: &mut citadel_cache::CacheHandle, key: &[u8]) -> Option<(Vec<u8>, Option<u64>)> {
    h.get(key, |item| {
        let mut v = Vec::new();
        item.write_value_to(&mut v);
        (v, item.expire_at())
    })
}

fuzz_target!(|input: &[u8]| {
    let base = base();
    let mut image = base.image.clone();
    let patched = patch(&mut image, input);
    image[H_CLEAN..H_CLEAN + 8].fill(0);
    std::fs::write(&base.path, &image).expect("write image");
    let Ok((cache, report)) = Cache::open(config(&base.path)) else {
        return;
    };
    if std::env::var_os("FUZZ_DEBUG").is_some() {
        eprintln!("{report:?} patched {patched:?}");
    }
    let mut h = cache.handle().unwrap();
    let audit = |what: &str| {
        if let Err(e) = cache.audit() {
            panic!("after {what}: {e}");
        }
    };
    audit("attach");
    for k in &base.keys {
        if let Some((v, at)) = read(&mut h, &k.key) {
            let right = v == k.value && at == k.expire_at;
            assert!(
                right || overlaps(&k.ranges, &patched),
                "wrong value for {:?}",
                String::from_utf8_lossy(&k.key)
            );
            assert!(right || !checked_value::matches(&k.key, &v) || overlaps(&k.ranges, &patched));
        }
    }
    let mut cursor = 0;
    for _ in 0..10_000 {
        let mut keys = Vec::new();
        cursor = h.scan(cursor, 16, |item| keys.push(item.key().to_vec()));
        for key in keys {
            let _ = read(&mut h, &key);
        }
        if cursor == 0 {
            break;
        }
    }
    // Writes after recovery must read back exactly.
    let fresh = checked_value::make(b"fuzz-key-00", 2, 40);
    if h.set(b"fuzz-key-00", &fresh, None).is_ok() {
        assert_eq!(read(&mut h, b"fuzz-key-00"), Some((fresh, None)));
    }
    let large = checked_value::make(b"fuzz-key-12", 2, 6000);
    if h.set(b"fuzz-key-12", &large, None).is_ok() {
        assert_eq!(read(&mut h, b"fuzz-key-12"), Some((large, None)));
    }
    h.delete(b"fuzz-key-01");
    assert_eq!(read(&mut h, b"fuzz-key-01"), None, "deleted key still there");
    let mut out = Vec::new();
    h.random_key(&mut out);
    h.maintain();
    h.flush_all();
    for k in &base.keys {
        assert_eq!(read(&mut h, &k.key), None, "key survived FLUSHALL");
    }
    audit("FLUSHALL");
    assert_eq!(cache.len(), 0, "FLUSHALL left keys counted");
});
