//! Writing an item into this writer's segments: header, key and value
//! parts (the caller's bytes or bytes copied from the cache itself), with
//! the check computed over exactly the bytes stored. Large values go to
//! whole chunk segments. Nothing is reachable until `update` publishes it.

use xxhash_rust::xxh3::{xxh3_64_with_seed, Xxh3};

use crate::cache::Cache;
use crate::edit::item_check;
use crate::error::WriteError;
use crate::index::{Entry, KeyHash};
use crate::item::{
    chunk_count, encode_header, header_check_at, value_check, PutOptions, F_EDIT, MAX_HEADER_LEN,
    MAX_KEY_LEN, SAMPLED_CHECK_MIN,
};
use crate::layout::SEGMENT_SIZE;
use crate::region::{Part, Region};
use crate::segment::{ttl_class, Seg, State};
use crate::writer::Writer;

/// Items up to this size are assembled on the stack and stored at once.
const SMALL_ITEM: usize = 256;

impl Writer {
    /// Writes an item into this writer's segments; returns its location. The
    /// item is not reachable until the caller publishes an index entry.
    pub fn write_item<'p, P: Into<Part<'p>> + Copy>(
        &mut self,
        cache: &Cache,
        key: &[u8],
        hash: KeyHash,
        parts: &[P],
        opts: PutOptions,
    ) -> Result<(u32, u32), WriteError> {
        let expire_at = opts.expire_at;
        if key.len() > MAX_KEY_LEN {
            return Err(WriteError::KeyTooLarge {
                len: key.len() as u64,
                max: MAX_KEY_LEN as u64,
            });
        }
        let vlen: u64 = parts.iter().map(|&p| p.into().len() as u64).sum();
        if vlen > cache.max_value_size {
            return Err(WriteError::ValueTooLarge {
                len: vlen,
                max: cache.max_value_size,
            });
        }
        let class = ttl_class(expire_at, self.now);
        // An editable item's check leaves out its region: computed from
        // the stored bytes below, not from the stack copy.
        if !opts.editable {
            if let Some(loc) = self.write_small(cache, key, hash, parts, vlen, opts, class)? {
                return Ok(loc);
            }
        }
        let mut header = [0u8; MAX_HEADER_LEN];
        let region = &cache.region;
        if MAX_HEADER_LEN + key.len() + vlen as usize <= SEGMENT_SIZE {
            // The header's length does not depend on the check, which is
            // known only once the value is stored: the header is encoded
            // once, its check filled in, and stored last with the key.
            let hlen = encode_header(&mut header, key.len(), vlen, false, 0, opts);
            let len = hlen + key.len() + vlen as usize;
            let (seg, off) = self.reserve(cache, class, len)?;
            let at = seg.data + off as usize;
            let value_at = at + hlen + key.len();
            let mut check = store_parts(region, value_at, parts, hash.0);
            if opts.editable {
                // Rare (a list root rewritten): the whole value's check
                // was computed for nothing; this one reads the region's
                // trailer from what was stored.
                let stored = region.shared(value_at, vlen as usize).expect("just stored");
                check = item_check(stored, hash.0, F_EDIT);
            }
            let check_at = header_check_at(hlen, opts);
            header[check_at..check_at + 2].copy_from_slice(&check.to_le_bytes());
            store_head(region, at, &header[..hlen], key);
            self.commit(seg, off, len, expire_at);
            return Ok((seg.id, off));
        }
        let table = self.write_chunks(cache, parts, vlen)?;
        let check = xxh3_64_with_seed(&table, hash.0) as u16;
        // A chunked value has no region.
        let opts = PutOptions {
            editable: false,
            ..opts
        };
        let hlen = encode_header(&mut header, key.len(), vlen, true, check, opts);
        let len = hlen + key.len() + table.len();
        let (seg, off) = match self.append(cache, class, len) {
            Ok(loc) => loc,
            Err(e) => {
                self.free_chunk_table(cache, &table);
                return Err(e);
            }
        };
        let at = seg.data + off as usize;
        region.store_bytes(at, &header[..hlen]);
        region.store_bytes(at + hlen, key);
        region.store_bytes(at + hlen + key.len(), &table);
        self.commit(seg, off, len, expire_at);
        Ok((seg.id, off))
    }

    /// Copies this writer's unpublished item at `seg`/`off` (a
    /// transaction's pending write), bytes as stored, to the end of its
    /// active segment for the item's TTL class, and returns where it went:
    /// the old segment can then be freed. A large item's chunks stay where
    /// they are (only its inline part moves). None, nothing moved, when no
    /// item can be parsed there.
    pub fn relocate_unpublished(
        &mut self,
        cache: &Cache,
        seg: u32,
        off: u32,
    ) -> Result<Option<(u32, u32)>, WriteError> {
        let Some(item) = cache.item_at(Entry::new(0, seg, off, 0), 0) else {
            return Ok(None);
        };
        let len = item.header.total_len();
        let expire_at = item.expire_at();
        let from = cache.seg(seg).data + off as usize;
        let Some(bytes) = cache.region.shared(from, len) else {
            return Ok(None);
        };
        let class = ttl_class(expire_at, self.now);
        let (to, to_off) = self.reserve(cache, class, len)?;
        // The item is private to this writer (unpublished, its segment
        // not sealed): nothing changes it under the copy.
        store_part(
            &cache.region,
            to.data + to_off as usize,
            Part::Shared(bytes),
            |_| {},
        );
        self.commit(to, to_off, len, expire_at);
        Ok(Some((to.id, to_off)))
    }

    /// A small item (most of them) is assembled on the stack, word-aligned
    /// with where it goes, and stored a whole word at a time
    /// (`Region::store_aligned_item`): only its first word is merged. None
    /// when the item is too big for the stack buffer. The header is encoded
    /// once, its check filled in after the value is copied.
    #[allow(clippy::too_many_arguments)] // the parts of one item, as write_item has them
    #[inline]
    fn write_small<'p, P: Into<Part<'p>> + Copy>(
        &mut self,
        cache: &Cache,
        key: &[u8],
        hash: KeyHash,
        parts: &[P],
        vlen: u64,
        opts: PutOptions,
        class: usize,
    ) -> Result<Option<(u32, u32)>, WriteError> {
        let mut header = [0u8; MAX_HEADER_LEN];
        let hlen = encode_header(&mut header, key.len(), vlen, false, 0, opts);
        let len = hlen + key.len() + vlen as usize;
        if len > SMALL_ITEM {
            return Ok(None);
        }
        let (seg, off) = self.reserve(cache, class, len)?;
        let at = seg.data + off as usize;
        // Two buffer sizes: zeroing the big one costs a memset call, more
        // than the rest of a typical (< 64-byte) item's assembly.
        if (at & 7) + len <= TINY_BUF {
            store_small::<TINY_BUF, P>(cache, at, &header, hlen, key, hash, parts, opts, len);
        } else {
            store_small::<SMALL_BUF, P>(cache, at, &header, hlen, key, hash, parts, opts, len);
        }
        self.commit(seg, off, len, opts.expire_at);
        Ok(Some((seg.id, off)))
    }

    /// Stores a value too big for one segment in whole chunk segments and
    /// returns the chunk table (`n:u32 | ids`). Rare, so it may allocate.
    fn write_chunks<'p, P: Into<Part<'p>> + Copy>(
        &mut self,
        cache: &Cache,
        parts: &[P],
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
                let p: Part = parts[part].into();
                let take = (p.len() - part_off).min(SEGMENT_SIZE - filled);
                // The chunk segment was just taken off the free list by us.
                store_part(
                    &cache.region,
                    seg.data + filled,
                    piece(p, part_off, take),
                    |_| {},
                );
                filled += take;
                part_off += take;
                if part_off == p.len() {
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
                cache.push_free(cache.seg(id));
            }
        }
    }

    /// `append`, with the active segment's room checked inline (the
    /// out-of-line call cost more than the check).
    #[inline(always)]
    fn reserve<'c>(
        &mut self,
        cache: &'c Cache,
        class: usize,
        len: usize,
    ) -> Result<(Seg<'c>, u32), WriteError> {
        match self.try_append(cache, class, len) {
            Some(loc) => {
                self.dirty |= 1 << class;
                cache
                    .region
                    .prefetch_write(loc.0.data + loc.1 as usize + WRITE_AHEAD);
                Ok(loc)
            }
            None => self.append(cache, class, len),
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
                self.retire_full(cache, class);
            }
            let seg = self.take_active(cache, class)?;
            self.set_active(cache, class, seg.id + 1);
        }
        Err(WriteError::OutOfMemory { len: len as u64 })
    }
}

/// Stack buffers of `write_small` (an item starts up to 7 bytes into its
/// first word): most items fit the tiny one, all small ones the other.
const TINY_BUF: usize = 96;
const SMALL_BUF: usize = SMALL_ITEM + 8;

/// Assembles a small item in a `B`-byte stack buffer, word-aligned with
/// where it goes (`at`), fills in its check and stores it.
#[allow(clippy::too_many_arguments)] // the parts of one item, as write_item has them
#[inline(always)]
fn store_small<'p, const B: usize, P: Into<Part<'p>> + Copy>(
    cache: &Cache,
    at: usize,
    header: &[u8; MAX_HEADER_LEN],
    hlen: usize,
    key: &[u8],
    hash: KeyHash,
    parts: &[P],
    opts: PutOptions,
    len: usize,
) {
    let lo = at & 7;
    // Zeroed: leaving it uninitialised would need `unsafe` outside the
    // mapping for a few instructions. The whole header array is copied (a
    // fixed-size move); the key and value overwrite what is past it.
    let mut buf = [0u8; B];
    buf[lo..lo + MAX_HEADER_LEN].copy_from_slice(header);
    let key_at = lo + hlen;
    copy_short(&mut buf[key_at..key_at + key.len()], key);
    let value_at = key_at + key.len();
    let mut to = value_at;
    for &p in parts {
        let p: Part = p.into();
        let dst = &mut buf[to..to + p.len()];
        match p {
            Part::Local(b) => copy_short(dst, b),
            Part::Shared(s) => s.copy_to(dst),
        }
        to += p.len();
    }
    // The check covers exactly the bytes stored: this copy.
    let check = xxh3_64_with_seed(&buf[value_at..lo + len], hash.0) as u16;
    let check_at = lo + header_check_at(hlen, opts);
    buf[check_at..check_at + 2].copy_from_slice(&check.to_le_bytes());
    cache.region.store_aligned_item(at, &buf, len);
}

/// `dst.copy_from_slice(src)` for the short keys and values most items
/// have: 8 to 32 bytes move as two overlapping fixed-size copies instead
/// of a `memcpy` call (two per small item, a tenth of its write).
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if dst.len() == n && (8..=32).contains(&n) {
        if n <= 16 {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        } else {
            dst[..16].copy_from_slice(&src[..16]);
            dst[n - 16..].copy_from_slice(&src[n - 16..]);
        }
        return;
    }
    dst.copy_from_slice(src);
}

/// Keys up to this long are stored together with their item's header.
const HEAD_KEY: usize = 64;

/// Stores an item's header and key at `at`: one store for a short key
/// (each store merges its edge words), two for a long one.
fn store_head(region: &Region, at: usize, header: &[u8], key: &[u8]) {
    let mut buf = [0u8; MAX_HEADER_LEN + HEAD_KEY];
    let len = header.len() + key.len();
    let Some(head) = buf.get_mut(..len) else {
        region.store_bytes(at, header);
        region.store_bytes(at + header.len(), key);
        return;
    };
    head[..header.len()].copy_from_slice(header);
    copy_short(&mut head[header.len()..], key);
    region.store_bytes(at, head);
}

/// `len` bytes of `p` from `start`.
fn piece(p: Part<'_>, start: usize, len: usize) -> Part<'_> {
    match p {
        Part::Local(b) => Part::Local(&b[start..start + len]),
        Part::Shared(s) => Part::Shared(s.get(start..start + len).expect("in range")),
    }
}

/// Stores one part at `at`, showing `seen` each stored piece (bytes of the
/// cache pass through a stack buffer, so `seen` gets exactly what was stored).
fn store_part(region: &Region, mut at: usize, p: Part<'_>, mut seen: impl FnMut(&[u8])) {
    let mut store = |block: &[u8]| {
        seen(block);
        region.store_unpublished(at, block);
        at += block.len();
    };
    match p {
        Part::Local(b) => store(b),
        Part::Shared(s) => s.for_each_block(store),
    }
}

/// Stores the concatenation of `parts` at `at` and returns the 16-bit check
/// (`value_check`: xxh3 seeded with the key hash) of exactly the bytes stored: a part read
/// from the cache may change under the copy, and the check must still
/// describe what the item holds.
fn store_parts<'p, P: Into<Part<'p>> + Copy>(
    region: &Region,
    mut at: usize,
    parts: &[P],
    seed: u64,
) -> u16 {
    let vlen: usize = parts.iter().map(|&p| p.into().len()).sum();
    if vlen >= SAMPLED_CHECK_MIN {
        // A sampled check, read back from what was stored (a few KiB).
        let start = at;
        for &p in parts {
            let p: Part = p.into();
            store_part(region, at, p, |_| {});
            at += p.len();
        }
        let stored = region.shared(start, vlen).expect("the value just stored");
        return value_check(stored, seed);
    }
    if let [one] = parts {
        if let Part::Local(b) = (*one).into() {
            region.store_unpublished(at, b);
            return xxh3_64_with_seed(b, seed) as u16;
        }
    }
    let mut h = Xxh3::with_seed(seed);
    for &p in parts {
        let p: Part = p.into();
        store_part(region, at, p, |block| h.update(block));
        at += p.len();
    }
    h.digest() as u16
}

/// How far past an item the line a later write will fill is loaded for
/// writing. A segment fills in order, and the line a SET lands on has
/// usually left the cache since the segment was last used: loaded ahead,
/// the item's stores do not wait for it. Measured with redis-benchmark
/// SET -P 16 over 100k keys (`benches/server-cpu.sh`'s shape, 3M SETs per
/// run, four runs each): server CPU per SET 8% lower, user time 13%
/// (256 to 1024 bytes ahead alike).
const WRITE_AHEAD: usize = 512;
