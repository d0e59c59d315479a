//! Recovery of journals caught mid-write: each test writes a journal
//! state by hand (with the writer's own calls, stopped where a crash
//! would stop them), drops the cache without closing it, attaches again
//! and checks what recovery made of it.

use std::sync::Arc;

use crate::cache::Cache;
use crate::handle::CacheHandle;
use crate::index::{candidate_slots, Entry, KeyHash};
use crate::item::PutOptions;
use crate::journal::*;
use crate::store::{AttachReport, CacheConfig};
use crate::sync::Ordering;

struct Crashable {
    _dir: tempfile::TempDir,
    cfg: CacheConfig,
}

impl Crashable {
    fn new() -> Crashable {
        let dir = tempfile::tempdir().unwrap();
        let cfg = CacheConfig {
            path: dir.path().join("c"),
            max_memory: 8 << 20,
            ..CacheConfig::default()
        };
        Crashable { _dir: dir, cfg }
    }

    fn open(&self) -> (Arc<Cache>, AttachReport) {
        Cache::open(self.cfg.clone()).unwrap()
    }
}

/// Writes `value` for `key` into the handle's segments, unpublished, and
/// returns the entry that would publish it.
fn unpublished(h: &mut CacheHandle, key: &[u8], value: &[u8]) -> Entry {
    let hash = KeyHash::of(key);
    let cache = Arc::clone(&h.cache);
    let (seg, off) =
        h.w.write_item(&cache, key, hash, &[value], PutOptions::default())
            .unwrap();
    Entry::new(hash.tag(), seg, off, 0)
}

/// Stores `word` in the index slot at `slot`, as a writer would have.
fn poke(cache: &Cache, slot: usize, word: u64) {
    // ORDERING: Relaxed: single-threaded test.
    cache.region.u64_at(slot).store(word, Ordering::Relaxed);
}

/// The slot and entry of `key` (which must be present).
fn slot_of(cache: &Cache, key: &[u8]) -> (usize, Entry) {
    let hash = KeyHash::of(key);
    let v = cache.locks().read_begin(hash.home(&cache.geo));
    let (slot, e, _) = cache.find(hash, key, v).expect("present");
    (slot, e)
}

fn value(h: &mut CacheHandle, key: &[u8]) -> Option<Vec<u8>> {
    h.get(key, |item| {
        let mut v = Vec::new();
        item.write_value_to(&mut v);
        v
    })
}

/// The handle's journal state word.
fn state(h: &CacheHandle) -> u64 {
    h.cache
        .journal(h.w.slot)
        .word(J_STATE)
        // ORDERING: Relaxed: the test's cache is quiescent.
        .load(Ordering::Relaxed)
}

/// "Crashes" (drops everything without closing), attaches again and
/// checks how many writes recovery rolled forward and back.
fn crash_and_reattach(
    c: &Crashable,
    h: CacheHandle,
    cache: Arc<Cache>,
    replayed: (u64, u64),
) -> (Arc<Cache>, CacheHandle) {
    drop((h, cache));
    let (cache, report) = c.open();
    assert!(!report.clean, "{report:?}");
    assert_eq!(
        (report.rolled_forward, report.rolled_back),
        replayed,
        "{report:?}"
    );
    let h = cache.handle().unwrap();
    (cache, h)
}

/// Each key's value (None: absent), an index that passes the audit and
/// holds exactly the keys `expected` lists as present.
fn assert_recovered(cache: &Cache, h: &mut CacheHandle, expected: &[(&[u8], Option<&[u8]>)]) {
    for &(key, want) in expected {
        assert_eq!(value(h, key).as_deref(), want, "{key:?}");
    }
    cache.audit().unwrap();
    let present = expected.iter().filter(|(_, v)| v.is_some()).count();
    assert_eq!(cache.len(), present as u64);
}

/// A cache with `a` = "old-a" and `b` = "old-b", and an unpublished
/// "new-a": the start of a write that replaces `a` (and more). Returns
/// the cache, the writer, new-a's entry and `a`'s slot.
fn replacing_a(c: &Crashable) -> (Arc<Cache>, CacheHandle, Entry, usize) {
    let (cache, _) = c.open();
    let mut h = cache.handle().unwrap();
    h.set(b"a", b"old-a", None).unwrap();
    h.set(b"b", b"old-b", None).unwrap();
    let new_a = unpublished(&mut h, b"a", b"new-a");
    let (slot_a, _) = slot_of(&cache, b"a");
    (cache, h, new_a, slot_a)
}

#[test]
fn a_write_caught_applying_is_completed() {
    let c = Crashable::new();
    let (cache, mut h, new_a, slot_a) = replacing_a(&c);
    let new_b = unpublished(&mut h, b"b", b"new-b");
    let (slot_b, _) = slot_of(&cache, b"b");
    let journal = cache.journal(h.w.slot);
    journal.begin_apply(0, &[store(slot_a, new_a), store(slot_b, new_b)]);
    // The crash comes after the first of the two entry stores.
    poke(&cache, slot_a, new_a.0);
    let (cache, mut h) = crash_and_reattach(&c, h, cache, (1, 0));
    assert_recovered(
        &cache,
        &mut h,
        &[(b"a", Some(&b"new-a"[..])), (b"b", Some(&b"new-b"[..]))],
    );
    assert_eq!(state(&h), IDLE);
}

#[test]
fn a_write_caught_claiming_is_undone() {
    let c = Crashable::new();
    // MSET a new-a c new-c: c is new (claimed), a is replaced (applied).
    let (cache, mut h, _, _) = replacing_a(&c);
    let new_c = unpublished(&mut h, b"c", b"new-c");
    let hash_c = KeyHash::of(b"c");
    cache
        .journal(h.w.slot)
        .begin_claims(&[claim(hash_c, new_c)]);
    // The crash comes right after c's claim (a CAS into a free slot).
    let slot = candidate_slots(&cache.geo, hash_c)
        // ORDERING: Relaxed: single-threaded test.
        .find(|&s| cache.region.u64_at(s).load(Ordering::Relaxed) == 0)
        .unwrap();
    poke(&cache, slot, new_c.0);
    assert_eq!(value(&mut h, b"c").as_deref(), Some(&b"new-c"[..]));
    let (cache, mut h) = crash_and_reattach(&c, h, cache, (0, 1));
    // The claim is undone.
    assert_recovered(
        &cache,
        &mut h,
        &[
            (b"a", Some(&b"old-a"[..])),
            (b"b", Some(&b"old-b"[..])),
            (b"c", None),
        ],
    );
}

/// A key a write removed leaves its slot free; another key may take it
/// before the write's journal goes IDLE. Replaying the removal must not
/// clear that key.
#[test]
fn a_replayed_removal_spares_a_key_that_took_the_slot() {
    let c = Crashable::new();
    let (cache, mut h, new_a, slot_a) = replacing_a(&c);
    let (slot_b, old_b) = slot_of(&cache, b"b");
    let home = KeyHash::of(b"b").home(&cache.geo);
    let x = (0u32..)
        .map(|i| format!("x{i}").into_bytes())
        .find(|k| KeyHash::of(k).home(&cache.geo) == home && k != b"b")
        .unwrap();
    let new_x = unpublished(&mut h, &x, b"x");
    cache
        .journal(h.w.slot)
        .begin_apply(0, &[store(slot_a, new_a), clear_if(slot_b, old_b)]);
    poke(&cache, slot_a, new_a.0);
    poke(&cache, slot_b, 0);
    // x, whose home is b's, takes the freed slot (as another writer would).
    poke(&cache, slot_b, new_x.0);
    let (cache, mut h) = crash_and_reattach(&c, h, cache, (1, 0));
    assert_recovered(
        &cache,
        &mut h,
        &[
            (&x, Some(&b"x"[..])),
            (b"a", Some(&b"new-a"[..])),
            (b"b", None),
        ],
    );
}

#[test]
fn a_corrupt_journal_is_ignored_and_reset() {
    let c = Crashable::new();
    let (cache, h, new_a, slot_a) = replacing_a(&c);
    let (slot_b, _) = slot_of(&cache, b"b");
    let journal = cache.journal(h.w.slot);
    journal.begin_apply(0, &[store(slot_a, new_a), clear_if(slot_b, Entry(1))]);
    // A record word changes after its checksum was computed.
    let (word, _) = journal.record_words(1);
    // ORDERING: Relaxed: single-threaded test.
    word.store(slot_b as u64 | STORE, Ordering::Relaxed);
    let (cache, mut h) = crash_and_reattach(&c, h, cache, (0, 0));
    assert_recovered(
        &cache,
        &mut h,
        &[(b"a", Some(&b"old-a"[..])), (b"b", Some(&b"old-b"[..]))],
    );
    assert_eq!(state(&h), IDLE, "never replayed by a later recovery");
}

/// A journal left non-IDLE in a cleanly closed file (only corruption does
/// that) is reset at attach, so a later crash does not replay it.
#[test]
fn a_clean_attach_resets_journals() {
    let c = Crashable::new();
    let (cache, h, new_a, slot_a) = replacing_a(&c);
    cache
        .journal(h.w.slot)
        .begin_apply(0, &[store(slot_a, new_a), store(slot_a, new_a)]);
    drop(h);
    cache.close();
    drop(cache);
    let (cache, report) = c.open();
    assert!(report.clean);
    drop(cache);
    let (cache, report) = c.open();
    assert!(!report.clean && report.rolled_forward == 0, "{report:?}");
    let mut h = cache.handle().unwrap();
    assert_eq!(value(&mut h, b"a").as_deref(), Some(&b"old-a"[..]));
}

#[test]
fn only_multi_key_writes_use_the_journal() {
    let c = Crashable::new();
    let (cache, _) = c.open();
    let mut h = cache.handle().unwrap();
    let journal = cache.journal(h.w.slot);
    // ORDERING: Relaxed: single-threaded test.
    let claims = || journal.word(J_CLAIMS).load(Ordering::Relaxed);
    for i in 0..100u32 {
        h.set(&i.to_le_bytes(), b"v", None).unwrap();
    }
    h.update(&[b"0000", b"0000"], |_, ch| ch.put(0, &[b"dup"], None))
        .unwrap()
        .unwrap();
    assert_eq!(claims(), 0, "single-key writes skip the journal");
    h.update(&[b"new1", b"new2"], |_, ch| {
        ch.put(0, &[b"1"], None)?;
        ch.put(1, &[b"2"], None)
    })
    .unwrap()
    .unwrap();
    assert_eq!((claims(), state(&h)), (2, IDLE));
    // Too many keys for one journal: applied all the same, and counted.
    let keys: Vec<Vec<u8>> = (0..=RECORDS as u32)
        .map(|i| format!("k{i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    h.update(&refs, |_, ch| {
        (0..refs.len()).try_for_each(|i| ch.put(i, &[b"v"], None))
    })
    .unwrap()
    .unwrap();
    assert!(refs.iter().all(|k| value(&mut h, k).is_some()));
    assert_eq!(cache.stats().journal_overflows, 1);
}
