//! Item format in the value log, and the read-only view handed to callers.
//!
//! ```text
//! flags:u8 | klen:varint | vlen:varint | check:u16 | [expire_at:u64 if TTL]
//!     | [soft_expire_at:u64 if SOFT] | key | value area
//! ```
//! A *negative* item (flag NEG, empty value) remembers that an origin has no
//! such key (read-through); plain reads treat it as absent. A *soft* expiry is
//! a freshness deadline before the hard one (read-through's stale window).
//! The value area holds the value itself, or for a *large* item (a value that
//! does not fit one segment) the ids of the chunk segments holding it:
//! `n:u32 | id:u32 x n`. Five bytes of header for a small item without TTL;
//! items without a TTL carry no expiry field. `check` is 16 bits of
//! xxh3(value area) seeded with the key's hash (sampled from 64 KiB on:
//! `value_check`): verified on reads from segments that were live during a
//! crash (see recovery in store.rs).

use crate::index::{hash_pieces, hash_shared};
use crate::layout::{Geometry, SEGMENT_SIZE};
use crate::owned::{RootStamp, OWNER_STAMP_LEN};
use crate::region::{Region, SharedBytes};

pub const F_TTL: u8 = 1;
pub const F_LARGE: u8 = 2;
pub const F_NEG: u8 = 4;
pub const F_SOFT: u8 = 8;
/// An editable item: its value ends with a trailer naming a region that
/// may change after publication, outside its check (`edit.rs`).
pub const F_EDIT: u8 = 0x80;
/// Three bits of value kind (`ValueKind`): zero for a string, so items
/// written before collections existed read as strings.
const F_KIND_SHIFT: u8 = 4;
const F_KIND: u8 = 7 << F_KIND_SHIFT;
/// All kind bits set (no kind has them): a string Redis would hold raw
/// whatever its content (`PutOptions::raw_string`).
const F_RAW_STRING: u8 = F_KIND;

/// What a value is: a string, or one of the collection types, each stored
/// in an encoding of its own (`citadel-collections`). Redis's TYPE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ValueKind {
    #[default]
    String = 0,
    Hash = 1,
    List = 2,
    Set = 3,
    ZSet = 4,
    /// A page of a big collection, owned by its root item (`owned.rs`):
    /// not a key of the keyspace.
    Page = 5,
    Stream = 6,
}

impl ValueKind {
    fn from_bits(bits: u8) -> Option<ValueKind> {
        Some(match bits {
            0 => ValueKind::String,
            1 => ValueKind::Hash,
            2 => ValueKind::List,
            3 => ValueKind::Set,
            4 => ValueKind::ZSet,
            5 => ValueKind::Page,
            6 => ValueKind::Stream,
            // F_RAW_STRING: a string all the same.
            7 => ValueKind::String,
            _ => return None,
        })
    }
    /// The name TYPE replies with.
    pub fn type_name(self) -> &'static str {
        match self {
            ValueKind::String => "string",
            ValueKind::Hash => "hash",
            ValueKind::List => "list",
            ValueKind::Set => "set",
            ValueKind::ZSet => "zset",
            ValueKind::Page => "none",
            ValueKind::Stream => "stream",
        }
    }
}
/// Longest key: a key must fit in one segment with room to spare.
pub const MAX_KEY_LEN: usize = SEGMENT_SIZE / 4;
pub const MAX_HEADER_LEN: usize = 1 + 3 + 5 + 2 + 8 + 8;
/// Bytes of an item's start copied to the stack to parse its header (and,
/// for short keys, compare the key): at least MAX_HEADER_LEN.
pub const HEAD_COPY: usize = 32;

/// How an item is written (see `Changes::put_with`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Hard expiry in Unix ms: the item is gone after it.
    pub expire_at: Option<u64>,
    /// Freshness deadline in Unix ms (read-through stale window), before `expire_at`.
    pub soft_expire_at: Option<u64>,
    /// A negative-cache marker: the origin has no such key.
    pub negative: bool,
    /// What the value is (a string unless a collection command wrote it).
    pub kind: ValueKind,
    /// The value ends with an editable region's trailer (`edit.rs`): it
    /// may then be edited in place (`Changes::edit`).
    pub editable: bool,
    /// A string that Redis would hold raw whatever its length or content
    /// (the result of APPEND, SETRANGE, SETBIT ...: OBJECT ENCODING says
    /// "raw" where the content alone would say "int" or "embstr"). Kept in
    /// the kind bits (`F_RAW_STRING`); meaningless for another kind.
    pub raw_string: bool,
}

impl PutOptions {
    /// A page of a collection root (`owned.rs`): no expiry of its own,
    /// never edited in place.
    pub const PAGE: PutOptions = PutOptions {
        expire_at: None,
        soft_expire_at: None,
        negative: false,
        kind: ValueKind::Page,
        editable: false,
        raw_string: false,
    };
}

#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub flags: u8,
    /// Header length in bytes.
    pub len: u8,
    pub check: u16,
    pub klen: u32,
    pub vlen: u64,
    /// Meaningful only with F_TTL (see `expire_at()`).
    expire_raw: u64,
    /// Meaningful only with F_SOFT.
    soft_raw: u64,
}

impl Header {
    pub fn expire_at(&self) -> Option<u64> {
        (self.flags & F_TTL != 0).then_some(self.expire_raw)
    }
    /// Offset of the key from the item's start.
    pub fn key_off(&self) -> usize {
        self.len as usize
    }
    pub fn is_large(&self) -> bool {
        self.flags & F_LARGE != 0
    }
    pub fn kind(&self) -> ValueKind {
        // parse_header refuses unknown kinds.
        ValueKind::from_bits((self.flags & F_KIND) >> F_KIND_SHIFT).unwrap_or_default()
    }
    /// Bytes of the value area stored inline after the key.
    pub fn area_len(&self) -> usize {
        if self.is_large() {
            4 + 4 * chunk_count(self.vlen)
        } else {
            self.vlen as usize
        }
    }
    /// Whole item length in the segment.
    pub fn total_len(&self) -> usize {
        self.len as usize + self.klen as usize + self.area_len()
    }
}

pub fn chunk_count(vlen: u64) -> usize {
    (vlen as usize).div_ceil(SEGMENT_SIZE)
}

fn put_varint(buf: &mut [u8], mut pos: usize, mut v: u64) -> usize {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf[pos] = byte;
            return pos + 1;
        }
        buf[pos] = byte | 0x80;
        pos += 1;
    }
}

fn get_varint(bytes: &[u8], pos: &mut usize, max_bytes: usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..max_bytes {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Encodes a header into `buf`, returning its length. The common header
/// (one-byte lengths, no expiry words) is encoded inline: every write of
/// a small item calls this, and the call cost more than the encoding.
#[inline(always)]
pub fn encode_header(
    buf: &mut [u8; MAX_HEADER_LEN],
    klen: usize,
    vlen: u64,
    large: bool,
    check: u16,
    opts: PutOptions,
) -> usize {
    let ttls = opts.expire_at.is_some() || opts.soft_expire_at.is_some();
    if klen < 0x80 && vlen < 0x80 && !ttls {
        // Most items: one-byte lengths, no expiry words (the varint loops
        // and their bounds checks cost more than the item's copy).
        buf[0] = header_flags(large, opts);
        buf[1] = klen as u8;
        buf[2] = vlen as u8;
        buf[3..5].copy_from_slice(&check.to_le_bytes());
        return 5;
    }
    encode_header_varint(buf, klen, vlen, large, check, opts)
}

/// The flags byte of an item written with `opts`.
#[inline(always)]
fn header_flags(large: bool, opts: PutOptions) -> u8 {
    let flag = |on: bool, f: u8| if on { f } else { 0 };
    flag(opts.expire_at.is_some(), F_TTL)
        | flag(large, F_LARGE)
        | flag(opts.negative, F_NEG)
        | flag(opts.soft_expire_at.is_some(), F_SOFT)
        | flag(opts.editable, F_EDIT)
        // (Only a string's: the bits are a kind's too.)
        | flag(opts.raw_string && opts.kind == ValueKind::String, F_RAW_STRING)
        | (opts.kind as u8) << F_KIND_SHIFT
}

/// `encode_header` with varint lengths and the expiry words.
#[inline(never)]
fn encode_header_varint(
    buf: &mut [u8; MAX_HEADER_LEN],
    klen: usize,
    vlen: u64,
    large: bool,
    check: u16,
    opts: PutOptions,
) -> usize {
    buf[0] = header_flags(large, opts);
    let mut pos = put_varint(buf, 1, klen as u64);
    pos = put_varint(buf, pos, vlen);
    buf[pos..pos + 2].copy_from_slice(&check.to_le_bytes());
    pos += 2;
    for at in [opts.expire_at, opts.soft_expire_at].into_iter().flatten() {
        buf[pos..pos + 8].copy_from_slice(&at.to_le_bytes());
        pos += 8;
    }
    pos
}

/// Where the check sits in a header of `hlen` bytes that `encode_header`
/// wrote for `opts`: right before the TTL words, so a writer can encode the
/// header once and fill the check in when the value is stored.
#[inline]
pub fn header_check_at(hlen: usize, opts: PutOptions) -> usize {
    let ttls = usize::from(opts.expire_at.is_some()) + usize::from(opts.soft_expire_at.is_some());
    hlen - 2 - 8 * ttls
}

/// Parses a header from a copy of the bytes at an item's start (`bytes`, up
/// to HEAD_COPY of them) when `room` bytes remain in the segment from there.
/// Garbage yields None or a header whose item still fits in `room`. The
/// common header is parsed inline (every lookup parses one); the rest out
/// of line (`parse_header_varint`).
#[inline(always)]
pub fn parse_header(bytes: &[u8], room: usize) -> Option<Header> {
    // Fast path: small key and value (one-byte lengths), no TTL.
    if let [flags @ (0 | F_LARGE), k @ 0..=0x7f, v @ 0..=0x7f, c0, c1, ..] = *bytes {
        let h = Header {
            flags,
            len: 5,
            check: u16::from_le_bytes([c0, c1]),
            klen: k as u32,
            vlen: v as u64,
            expire_raw: 0,
            soft_raw: 0,
        };
        return (h.total_len() <= room).then_some(h);
    }
    parse_header_varint(bytes, room)
}

/// `parse_header` with varint lengths, expiry words or other flags.
#[inline(never)]
fn parse_header_varint(bytes: &[u8], room: usize) -> Option<Header> {
    let flags = *bytes.first()?;
    // Every flag bit has a meaning (F_EDIT took the last): only the kind
    // bits can be unknown.
    ValueKind::from_bits((flags & F_KIND) >> F_KIND_SHIFT)?;
    let mut pos = 1;
    let klen = get_varint(bytes, &mut pos, 3)?;
    let vlen = get_varint(bytes, &mut pos, 5)?;
    let check = u16::from_le_bytes(bytes.get(pos..pos + 2)?.try_into().ok()?);
    pos += 2;
    let mut expire_raw = 0;
    if flags & F_TTL != 0 {
        expire_raw = u64::from_le_bytes(bytes.get(pos..pos + 8)?.try_into().ok()?);
        pos += 8;
    }
    let mut soft_raw = 0;
    if flags & F_SOFT != 0 {
        soft_raw = u64::from_le_bytes(bytes.get(pos..pos + 8)?.try_into().ok()?);
        pos += 8;
    }
    if klen > MAX_KEY_LEN as u64 {
        return None;
    }
    let h = Header {
        flags,
        len: pos as u8,
        check,
        klen: klen as u32,
        vlen,
        expire_raw,
        soft_raw,
    };
    if (!h.is_large() && vlen as usize > SEGMENT_SIZE) || h.total_len() > room {
        return None;
    }
    Some(h)
}

/// A view of one item in the mapped file. Under an optimistic read its bytes
/// may be torn; the cache validates before it returns anything derived from it.
#[derive(Clone, Copy)]
pub struct ItemRef<'a> {
    pub(crate) geo: &'a Geometry,
    pub(crate) key: SharedBytes<'a>,
    pub(crate) area: SharedBytes<'a>,
    pub(crate) header: Header,
    pub(crate) version: u64,
}

impl<'a> ItemRef<'a> {
    pub fn key(&self) -> SharedBytes<'a> {
        self.key
    }
    pub fn value_len(&self) -> usize {
        self.header.vlen as usize
    }
    /// Absolute expiry in Unix ms, or None when the key has no TTL.
    pub fn expire_at(&self) -> Option<u64> {
        self.header.expire_at()
    }
    /// Freshness deadline (read-through), if the item was written with one.
    pub fn soft_expire_at(&self) -> Option<u64> {
        (self.header.flags & F_SOFT != 0).then_some(self.header.soft_raw)
    }
    /// True for a negative-cache marker (the origin has no such key).
    pub fn is_negative(&self) -> bool {
        self.header.flags & F_NEG != 0
    }
    /// The options this item was written with (to rewrite it unchanged),
    /// less `editable`: whether new bytes carry a region is their
    /// writer's to say.
    pub fn put_options(&self) -> PutOptions {
        PutOptions {
            expire_at: self.expire_at(),
            soft_expire_at: self.soft_expire_at(),
            negative: self.is_negative(),
            kind: self.kind(),
            editable: false,
            raw_string: self.is_raw_string(),
        }
    }
    /// A string written with `PutOptions::raw_string`.
    pub fn is_raw_string(&self) -> bool {
        self.header.flags & F_RAW_STRING == F_RAW_STRING
    }
    /// What the value is (TYPE; commands of another type get WRONGTYPE).
    pub fn kind(&self) -> ValueKind {
        self.header.kind()
    }
    /// Bytes the item takes in the file: its header, key and inline value
    /// area, plus the whole chunk segments a large value owns, plus its
    /// 8-byte index entry (MEMORY USAGE).
    pub fn stored_len(&self) -> usize {
        let chunks = if self.header.is_large() {
            chunk_count(self.header.vlen) * SEGMENT_SIZE
        } else {
            0
        };
        self.header.total_len() + chunks + 8
    }
    /// Length of the item's header in the segment (DEBUG OBJECT).
    pub fn header_len(&self) -> usize {
        self.header.len as usize
    }
    /// Change counter of the key's home bucket: moves whenever this key changes
    /// (and sometimes when a neighbour does), as Segcache's per-bucket CAS.
    pub fn version(&self) -> u64 {
        self.version
    }
    /// The value when it is stored in one piece (every value below ~1 MiB).
    pub fn contiguous(&self) -> Option<SharedBytes<'a>> {
        (!self.header.is_large()).then_some(self.area)
    }
    /// The value's bytes in order, one piece per chunk.
    pub fn chunks(&self) -> Chunks<'a> {
        self.value_range(0, self.value_len())
    }
    /// `len` bytes of the value from `start` (clamped to the value), in pieces.
    pub fn value_range(&self, start: usize, len: usize) -> Chunks<'a> {
        let start = start.min(self.value_len());
        Chunks {
            item: *self,
            at: start,
            end: start + len.min(self.value_len() - start),
        }
    }
    /// Appends the value to `out`. A value in one piece (every small one:
    /// GET's reply) is one copy, without the piece iterator (110 -> 99
    /// instructions a GET hit); chunked ones go piece by piece. Not
    /// inlined into its callers: there the reply's header and copy
    /// became calls of their own, which cost more.
    pub fn write_value_to(&self, out: &mut Vec<u8>) {
        match self.contiguous() {
            // The value is the area's first `value_len` bytes (`chunks`).
            Some(area) => {
                if let Some(value) = area.get(0..self.value_len()) {
                    value.append_to(out);
                }
            }
            None => self.write_chunks_to(out),
        }
    }

    /// `write_value_to` of a chunked (large) value, out of line.
    #[inline(never)]
    fn write_chunks_to(&self, out: &mut Vec<u8>) {
        // With the 8 bytes a piece's wide copy may write past its end
        // (`SharedBytes::append_to`): reserving the value alone made that
        // copy grow the vector again, a realloc per call.
        out.reserve(self.value_len() + 8);
        for c in self.chunks() {
            c.append_to(out);
        }
    }
    /// Copies a value stored in one piece into the front of `buf` if it fits
    /// (a number to parse); None otherwise.
    pub fn small_value<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        self.contiguous()?.copy_if_fits(buf)
    }
    /// xxh3-64 (seed 0) of the whole value, equal to `xxh3_64` of a copy
    /// of it, but streamed piece by piece through a stack buffer: no
    /// allocation of the value's size (content-addressed keys). A guess,
    /// as every read, until the read is validated (inside `CacheHandle::get`'s
    /// closure it is; `ValueView::content_hash` checks it).
    pub fn content_hash(&self) -> u64 {
        match self.contiguous() {
            Some(value) => hash_shared(value, 0),
            None => hash_pieces(self.chunks(), 0),
        }
    }
    /// Whether this item is a big collection's root (owned.rs): a
    /// collection kind whose value starts with a well-formed root stamp.
    pub fn is_root(&self) -> bool {
        self.root_stamp().is_some()
    }
    /// The stamp of a big collection's root (owned.rs): its generation and
    /// page range; None for any other item. Copies `OWNER_STAMP_LEN`
    /// bytes of collections only. Inlined: every write that replaces a
    /// string asks, and for one the answer is a test of its flags.
    #[inline(always)]
    pub(crate) fn root_stamp(&self) -> Option<RootStamp> {
        if matches!(self.kind(), ValueKind::String | ValueKind::Page) {
            return None;
        }
        self.collection_stamp()
    }
    /// `root_stamp` of a collection item: its value's head parsed.
    #[inline(never)]
    fn collection_stamp(&self) -> Option<RootStamp> {
        RootStamp::of(&self.value_head::<OWNER_STAMP_LEN>()?)
    }
    /// The value's first `N` bytes (`N` at most 40) on the stack; None
    /// when it is shorter. A value in one piece is read as whole words
    /// (every write of a paged collection reads its root's stamp a few
    /// times: this is most of what that costs).
    pub fn value_head<const N: usize>(&self) -> Option<[u8; N]> {
        if self.value_len() < N {
            return None;
        }
        if let Some(area) = self.contiguous() {
            return area.head::<N>();
        }
        let mut head = [0u8; N];
        let mut at = 0;
        for piece in self.value_range(0, N) {
            let to = head.get_mut(at..at + piece.len())?;
            piece.copy_to(to);
            at += piece.len();
        }
        (at == N).then_some(head)
    }
    pub(crate) fn is_page(&self) -> bool {
        self.kind() == ValueKind::Page
    }
    /// Chunk segment ids of a large item (none for a small one).
    pub(crate) fn chunk_ids(&self) -> impl Iterator<Item = u32> + 'a {
        let area = self.area;
        let n = if self.header.is_large() {
            area.len().saturating_sub(4) / 4
        } else {
            0
        };
        (0..n).map(move |i| chunk_id(area, i).unwrap_or(u32::MAX))
    }
    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        self.header.flags & F_TTL != 0 && self.header.expire_raw <= now_ms
    }
    fn region(&self) -> &'a Region {
        self.area.region()
    }
}

/// Entry `i` of a chunk table (`n:u32 | id:u32 x n`).
fn chunk_id(area: SharedBytes<'_>, i: usize) -> Option<u32> {
    let mut id = [0u8; 4];
    area.get(4 + 4 * i..8 + 4 * i)?.copy_to(&mut id);
    Some(u32::from_le_bytes(id))
}

/// Iterator over a range of a value, one piece per chunk it touches.
pub struct Chunks<'a> {
    item: ItemRef<'a>,
    at: usize,
    end: usize,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = SharedBytes<'a>;
    fn next(&mut self) -> Option<SharedBytes<'a>> {
        if self.at >= self.end {
            return None;
        }
        let (start, end) = (self.at, self.end);
        if !self.item.header.is_large() {
            self.at = end;
            return self.item.area.get(start..end);
        }
        let (chunk, inner) = (start / SEGMENT_SIZE, start % SEGMENT_SIZE);
        let len = (end - start).min(SEGMENT_SIZE - inner);
        self.at += len;
        // A torn chunk table may name a bad segment: yield nothing then; the
        // read fails validation and is retried.
        let id = chunk_id(self.item.area, chunk).filter(|&id| id < self.item.geo.segments);
        let Some(id) = id else {
            self.at = end;
            return None;
        };
        let data = self.item.geo.segdata_off + id as usize * SEGMENT_SIZE;
        self.item.region().shared(data + inner, len)
    }
}

/// Value areas at least this long have a sampled check (`value_check`).
pub const SAMPLED_CHECK_MIN: usize = 64 << 10;
/// Bytes checked at each end of a sampled value area.
const CHECK_EDGE: usize = 4096;
/// Bytes checked from every `CHECK_STRIDE`th byte between the edges.
const CHECK_SAMPLE: usize = 64;
const CHECK_STRIDE: usize = 4096;

/// The 16-bit check of a value area, xxh3 seeded with the key's hash: of
/// every byte below `SAMPLED_CHECK_MIN`; above, of the first and last 4 KiB
/// and 64 bytes at every 4 KiB between (12 KiB of a 256 KiB value, hashing
/// which cost 11% of a big SET's server CPU). What the check guards still
/// changes only where it is computed: after a kill -9 a published item can
/// differ from what was written only if compaction was moving it
/// (`move_to_front` copies front to back, so a torn move always changes
/// the item's first bytes: its header, key, then the first 4 KiB of the
/// value); and a stale page after a host crash (a disk file written back
/// out of order) leaves one of the samples, one per 4 KiB, of that page
/// stale too. Computed over the stored bytes (read back from the mapping
/// by the writer), so it describes exactly what the item holds.
pub fn value_check(area: SharedBytes<'_>, key_hash: u64) -> u16 {
    let len = area.len();
    if len < SAMPLED_CHECK_MIN {
        return hash_shared(area, key_hash) as u16;
    }
    let piece = |at: usize, n: usize| area.get(at..at + n).expect("inside the value area");
    let middle = (CHECK_STRIDE..len - CHECK_EDGE)
        .step_by(CHECK_STRIDE)
        .map(|at| piece(at, CHECK_SAMPLE.min(len - CHECK_EDGE - at)));
    let pieces = std::iter::once(piece(0, CHECK_EDGE))
        .chain(middle)
        .chain(std::iter::once(piece(len - CHECK_EDGE, CHECK_EDGE)));
    hash_pieces(pieces, key_hash) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_string_reads_as_a_string() {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let raw = PutOptions {
            raw_string: true,
            ..PutOptions::default()
        };
        let n = encode_header(&mut buf, 3, 4, false, 7, raw);
        let h = parse_header(&buf[..n], n + 7).unwrap();
        assert_eq!(
            (h.kind(), h.flags & F_RAW_STRING),
            (ValueKind::String, F_RAW_STRING)
        );
        let n = encode_header(&mut buf, 3, 4, false, 7, PutOptions::default());
        let h = parse_header(&buf[..n], n + 7).unwrap();
        assert_eq!((h.kind(), h.flags & F_RAW_STRING), (ValueKind::String, 0));
    }

    #[test]
    fn header_round_trips_and_is_small() {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = encode_header(&mut buf, 16, 32, false, 0xABCD, PutOptions::default());
        assert_eq!(n, 5, "a 16/32 item without TTL costs five header bytes");
        let mut bytes = buf[..n].to_vec();
        bytes.extend_from_slice(&[0u8; 48]);
        let h = parse_header(&bytes, bytes.len()).unwrap();
        assert_eq!(
            (h.klen, h.vlen, h.check, h.expire_at(), h.len),
            (16, 32, 0xABCD, None, 5)
        );
        let opts = PutOptions {
            expire_at: Some(1234),
            soft_expire_at: Some(1000),
            negative: false,
            kind: ValueKind::ZSet,
            editable: false,
            raw_string: false,
        };
        let vlen = 50 * SEGMENT_SIZE as u64;
        let n = encode_header(&mut buf, 300, vlen, true, 1, opts);
        let h = parse_header(&buf[..n], n + 300 + 4 + 4 * 50).unwrap();
        assert_eq!(
            (h.klen, h.vlen, h.expire_at(), h.is_large(), h.kind()),
            (300, vlen, Some(1234), true, ValueKind::ZSet)
        );
    }

    #[test]
    fn the_check_is_where_header_check_at_says() {
        let ttl = PutOptions {
            expire_at: Some(1234),
            soft_expire_at: Some(1000),
            ..PutOptions::default()
        };
        for (klen, vlen, opts) in [(3, 32, PutOptions::default()), (300, 70_000, ttl)] {
            let (mut once, mut whole) = ([0u8; MAX_HEADER_LEN], [0u8; MAX_HEADER_LEN]);
            let n = encode_header(&mut once, klen, vlen, false, 0, opts);
            let at = header_check_at(n, opts);
            once[at..at + 2].copy_from_slice(&0xBEEFu16.to_le_bytes());
            encode_header(&mut whole, klen, vlen, false, 0xBEEF, opts);
            assert_eq!(once, whole);
        }
    }

    #[test]
    fn garbage_never_overruns() {
        let mut seed = 1u64;
        for _ in 0..10_000 {
            let bytes: Vec<u8> = (0..40)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 56) as u8
                })
                .collect();
            if let Some(h) = parse_header(&bytes, bytes.len()) {
                assert!(h.total_len() <= bytes.len());
            }
        }
    }
}
