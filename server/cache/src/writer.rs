//! One thread's allocation state: its active segment per TTL class, where new
//! items are appended without any shared lock, and the bookkeeping of items
//! leaving the index.

use std::sync::atomic::Ordering;

use crate::error::WriteError;
use crate::index::{Entry, KeyHash};
use crate::item::{
    chunk_count, encode_header, parse_header, PutOptions, MAX_HEADER_LEN, MAX_KEY_LEN,
};
use crate::layout::SEGMENT_SIZE;
use crate::segment::{ttl_class, Seg, State, TTL_CLASSES};
use crate::stats::HandleCounters;
use crate::store::{Cache, W_EXPIRES, W_KEYS};

pub(crate) struct Writer {
    pub slot: usize,
    pub now: u64,
    rng: u64,
    /// Active segment id + 1 per TTL class (0: none yet).
    active: [u32; TTL_CLASSES],
    /// Full segments that may still hold unpublished items: sealed (made
    /// evictable) only after the write in progress is published.
    to_seal: Vec<u32>,
    /// TTL classes whose active segment got an item in the write in progress.
    dirty: u32,
    /// Chunk segments of removed items, freed once no lock is held.
    pub free_later: Vec<u32>,
    pub sweep_cursor: u64,
}

impl Writer {
    pub fn new(slot: usize, seed: u64) -> Writer {
        Writer {
            slot,
            now: crate::clock::unix_millis(),
            rng: seed | 1,
            active: [0; TTL_CLASSES],
            to_seal: Vec::new(),
            dirty: 0,
            free_later: Vec::new(),
            sweep_cursor: seed,
        }
    }

    pub fn next_random(&mut self) -> u64 {
        // xorshift64*: cheap, and good enough for sampling decisions.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn counters<'c>(&self, cache: &'c Cache) -> &'c HandleCounters {
        &cache.counters.per_handle[self.slot]
    }

    pub fn add_keys(&self, cache: &Cache, delta: i64) {
        self.add_to(cache, W_KEYS, delta);
    }

    /// Single-writer update of one of this writer slot's persistent counters.
    pub fn add_to(&self, cache: &Cache, field: usize, delta: i64) {
        if delta != 0 {
            let word = cache.writer_word(self.slot, field);
            word.store(
                word.load(Ordering::Relaxed).wrapping_add(delta as u64),
                Ordering::Relaxed,
            );
        }
    }

    /// Writes an item into this writer's segments; returns its location. The
    /// item is not reachable until the caller publishes an index entry.
    pub fn write_item(
        &mut self,
        cache: &Cache,
        key: &[u8],
        hash: KeyHash,
        parts: &[&[u8]],
        opts: PutOptions,
    ) -> Result<(u32, u32), WriteError> {
        let expire_at = opts.expire_at;
        if key.len() > MAX_KEY_LEN {
            return Err(WriteError::KeyTooLarge {
                len: key.len() as u64,
                max: MAX_KEY_LEN as u64,
            });
        }
        let vlen: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if vlen > cache.max_value_size {
            return Err(WriteError::ValueTooLarge {
                len: vlen,
                max: cache.max_value_size,
            });
        }
        let class = ttl_class(expire_at, self.now);
        let mut header = [0u8; MAX_HEADER_LEN];
        let small_len = MAX_HEADER_LEN + key.len() + vlen as usize;
        if small_len <= SEGMENT_SIZE {
            let check = crate::item::check_of(parts, hash.0);
            let hlen = encode_header(&mut header, key.len(), vlen, false, check, opts);
            let (seg, off) = self.append(cache, class, hlen + key.len() + vlen as usize)?;
            let mut at = seg.data + off as usize;
            for piece in [&header[..hlen], key]
                .into_iter()
                .chain(parts.iter().copied())
            {
                // SAFETY: `append` reserved off..off+len in our own active
                // segment; nothing points at it until we publish.
                unsafe { cache.region.write(at, piece) };
                at += piece.len();
            }
            self.commit(seg, off, hlen + key.len() + vlen as usize, expire_at);
            return Ok((seg.id, off));
        }
        let table = self.write_chunks(cache, parts, vlen)?;
        let check = crate::item::check_of(&[&table], hash.0);
        let hlen = encode_header(&mut header, key.len(), vlen, true, check, opts);
        let len = hlen + key.len() + table.len();
        let (seg, off) = match self.append(cache, class, len) {
            Ok(loc) => loc,
            Err(e) => {
                self.free_chunk_table(cache, &table);
                return Err(e);
            }
        };
        for (piece, at) in [
            (&header[..hlen], 0),
            (key, hlen),
            (&table[..], hlen + key.len()),
        ] {
            // SAFETY: reserved in our own active segment, as above.
            unsafe { cache.region.write(seg.data + off as usize + at, piece) };
        }
        self.commit(seg, off, len, expire_at);
        Ok((seg.id, off))
    }

    /// Stores a value too big for one segment in whole chunk segments and
    /// returns the chunk table (`n:u32 | ids`). Rare, so it may allocate.
    fn write_chunks(
        &mut self,
        cache: &Cache,
        parts: &[&[u8]],
        vlen: u64,
    ) -> Result<Vec<u8>, WriteError> {
        let n = chunk_count(vlen);
        let mut table = Vec::with_capacity(4 + 4 * n);
        table.extend_from_slice(&(n as u32).to_le_bytes());
        let (mut part, mut part_off) = (0usize, 0usize);
        for _ in 0..n {
            let seg = match self.alloc_segment(cache) {
                Ok(seg) => seg,
                Err(_) => {
                    self.free_chunk_table(cache, &table);
                    return Err(WriteError::OutOfMemory { len: vlen });
                }
            };
            seg.reset(State::Chunk, 0, self.now);
            table.extend_from_slice(&seg.id.to_le_bytes());
            let mut filled = 0;
            while filled < SEGMENT_SIZE && part < parts.len() {
                let take = (parts[part].len() - part_off).min(SEGMENT_SIZE - filled);
                // SAFETY: the chunk segment was just taken off the free list by us.
                unsafe {
                    cache
                        .region
                        .write(seg.data + filled, &parts[part][part_off..part_off + take])
                };
                filled += take;
                part_off += take;
                if part_off == parts[part].len() {
                    part += 1;
                    part_off = 0;
                }
            }
        }
        Ok(table)
    }

    fn free_chunk_table(&self, cache: &Cache, table: &[u8]) {
        for id in table.get(4..).unwrap_or(&[]).chunks_exact(4) {
            let id = u32::from_le_bytes(id.try_into().expect("4 bytes"));
            if id < cache.geo.segments {
                cache.free_list().push(cache.seg(id));
            }
        }
    }

    /// Reserves `len` bytes in the active segment of `class`, taking a new
    /// segment (evicting if needed) when the current one is full.
    fn append<'c>(
        &mut self,
        cache: &'c Cache,
        class: usize,
        len: usize,
    ) -> Result<(Seg<'c>, u32), WriteError> {
        for _ in 0..4 {
            if let Some(loc) = self.try_append(cache, class, len) {
                self.dirty |= 1 << class;
                return Ok(loc);
            }
            if self.active[class] != 0 {
                // Full: sealed once the write in progress is published.
                self.to_seal.push(self.active[class] - 1);
                self.set_active(cache, class, 0);
            }
            let seg = self.take_active(cache, class)?;
            self.set_active(cache, class, seg.id + 1);
        }
        Err(WriteError::OutOfMemory { len: len as u64 })
    }

    /// Reserves `len` bytes in the current active segment of `class`, if it has room.
    pub fn try_append<'c>(
        &self,
        cache: &'c Cache,
        class: usize,
        len: usize,
    ) -> Option<(Seg<'c>, u32)> {
        let id = self.active[class].checked_sub(1)?;
        let seg = cache.seg(id);
        let off = seg.write_off().load(Ordering::Relaxed);
        (off as usize + len <= SEGMENT_SIZE).then_some((seg, off))
    }

    /// Marks `len` bytes at `off` as complete (Release: the bytes come first).
    pub fn commit(&self, seg: Seg<'_>, off: u32, len: usize, expire_at: Option<u64>) {
        seg.write_off().store(off + len as u32, Ordering::Release);
        // Only this writer writes its active segment's header fields.
        let at = expire_at.unwrap_or(u64::MAX);
        if seg.max_expire().load(Ordering::Relaxed) < at {
            seg.max_expire().store(at, Ordering::Relaxed);
        }
    }

    fn set_active(&mut self, cache: &Cache, class: usize, id_plus_one: u32) {
        self.active[class] = id_plus_one;
        cache
            .active_word(self.slot, class)
            .store(id_plus_one, Ordering::Release);
    }

    /// A new active segment for `class`: a free one, else an evicted one that
    /// keeps its frequently read items at its front (see evict.rs).
    fn take_active<'c>(&mut self, cache: &'c Cache, class: usize) -> Result<Seg<'c>, WriteError> {
        let mut wait = VictimWait::default();
        loop {
            if let Some(seg) = cache.free_list().pop() {
                seg.reset(State::Active, class, self.now);
                return Ok(seg);
            }
            let Some(victim) = crate::evict::pick_victim(cache, self.now) else {
                if !self.retire_idle(cache) && !wait.another_try() {
                    break;
                }
                continue;
            };
            if let Some(seg) = self.compact(cache, victim, class) {
                return Ok(seg);
            }
        }
        Err(WriteError::OutOfMemory {
            len: SEGMENT_SIZE as u64,
        })
    }

    /// A free segment (for chunks), evicting one if none is free.
    pub fn alloc_segment<'c>(&mut self, cache: &'c Cache) -> Result<Seg<'c>, WriteError> {
        let mut wait = VictimWait::default();
        for _ in 0..64 {
            if let Some(seg) = cache.free_list().pop() {
                return Ok(seg);
            }
            if !self.evict_one(cache) && !self.retire_idle(cache) && !wait.another_try() {
                break;
            }
        }
        Err(WriteError::OutOfMemory {
            len: SEGMENT_SIZE as u64,
        })
    }

    /// An unpublished item is dropped: only its chunk segments need freeing.
    pub fn discard(&mut self, cache: &Cache, seg: u32, off: u32) {
        if let Some(item) = cache.item_at(Entry::new(0, seg, off, 0), 0) {
            if item.header.is_large() {
                let ids: Vec<u32> = item.chunk_ids().collect();
                for id in ids {
                    cache.free_list().push(cache.seg(id));
                }
            }
        }
    }

    /// Accounts for an item that just left the index (caller holds its home
    /// lock, so its bytes are stable): segment liveness, key count, chunks.
    pub fn unlinked(&mut self, cache: &Cache, e: Entry) {
        cache.seg(e.seg()).live().fetch_sub(1, Ordering::Relaxed);
        if let Some(item) = cache.item_at(e, 0) {
            self.free_later.extend(item.chunk_ids());
            if item.expire_at().is_some() {
                self.add_to(cache, W_EXPIRES, -1);
            }
        }
    }

    /// Counts a key that left the index by expiry or eviction.
    pub fn count_removed(&self, cache: &Cache, expired: bool) {
        self.add_keys(cache, -1);
        let c = self.counters(cache);
        HandleCounters::bump(
            if expired {
                &c.expirations
            } else {
                &c.evictions
            },
            1,
        );
    }

    /// Frees chunk segments collected while locks were held.
    pub fn free_collected(&mut self, cache: &Cache) {
        for id in self.free_later.drain(..) {
            if id < cache.geo.segments && cache.seg(id).state() == Some(State::Chunk) {
                cache.free_list().push(cache.seg(id));
            }
        }
    }

    /// Removes the entry at `slot` if it still points at the item of `e`.
    pub fn remove_if_same(
        &mut self,
        cache: &Cache,
        h: KeyHash,
        slot: usize,
        e: Entry,
        expired: bool,
    ) {
        let locks = cache.locks();
        let home = h.home(&cache.geo);
        let v = locks.lock(home);
        let word = cache.region.u64_at(slot);
        let cur = Entry(word.load(Ordering::Relaxed));
        let removed = cur.location() == e.location();
        if removed {
            word.store(0, Ordering::Release);
            crate::update::count_overflow(cache, h, slot, -1);
            self.unlinked(cache, cur);
        }
        locks.unlock(home, v);
        if removed {
            self.count_removed(cache, expired);
        }
        self.free_collected(cache);
    }

    /// Seals full segments once nothing unpublished can be in them.
    pub fn seal_pending(&mut self, cache: &Cache) {
        for id in self.to_seal.drain(..) {
            cache.seg(id).transition(State::Active, State::Sealed);
        }
        self.dirty = 0;
    }

    /// Seals this writer's active segments that hold nothing unpublished, so
    /// they can be evicted when nothing else can (a tiny cache full of large
    /// values). True if one was sealed.
    fn retire_idle(&mut self, cache: &Cache) -> bool {
        let mut sealed = false;
        for class in 0..TTL_CLASSES {
            if self.active[class] != 0 && self.dirty & (1 << class) == 0 {
                cache
                    .seg(self.active[class] - 1)
                    .transition(State::Active, State::Sealed);
                self.set_active(cache, class, 0);
                sealed = true;
            }
        }
        sealed
    }
}

/// Bounded waiting when no segment can be evicted right now (every one is
/// active or holds chunks): other writers seal theirs as their writes
/// complete, so yield for up to 50 ms before reporting out of memory.
#[derive(Default)]
struct VictimWait {
    since: Option<std::time::Instant>,
}

impl VictimWait {
    fn another_try(&mut self) -> bool {
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        std::thread::yield_now();
        since.elapsed() < std::time::Duration::from_millis(50)
    }
}

/// Parses the item at `off` of a segment being evicted (its bytes are stable).
pub(crate) fn item_len_at(seg: &Seg<'_>, off: usize, end: usize) -> Option<usize> {
    let bytes = seg.bytes_from(off);
    let h = parse_header(&bytes[..(end - off).min(bytes.len())])?;
    Some(h.total_len())
}
