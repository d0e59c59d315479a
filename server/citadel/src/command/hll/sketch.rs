//! Redis's HyperLogLog string encoding, byte for byte.
//!
//! A 16-byte header ("HYLL", encoding, 3 unused bytes, the cached
//! cardinality as 8 little-endian bytes whose top bit marks it stale), then
//! the registers: dense (16384 6-bit registers, LSB first, 12288 bytes) or
//! sparse (run-length opcodes: ZERO `00xxxxxx`, XZERO `01xxxxxx yyyyyyyy`,
//! VAL `1vvvvvxx`). Every edit follows hyperloglog.c step by step, so the
//! bytes Citadel writes are the bytes Redis writes.

use super::estimate::{register_and_run, Histogram, REGISTERS};

pub const HEADER_LEN: usize = 16;
const DENSE_LEN: usize = HEADER_LEN + REGISTERS * 6 / 8;
const ENCODING_AT: usize = 4;
const CARD_AT: usize = 8;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;

/// A sparse value whose opcodes do not cover the registers exactly.
#[derive(Debug, PartialEq, Eq)]
pub struct Corrupt;

/// Redis's isHLLObjectOrReply, from a value's first bytes and its length.
pub fn is_valid_header(header: &[u8], len: usize) -> bool {
    len >= HEADER_LEN
        && header.starts_with(b"HYLL")
        && header[ENCODING_AT] <= SPARSE
        && (header[ENCODING_AT] != DENSE || len == DENSE_LEN)
}

/// A stored cardinality still valid, from the header.
pub fn cached_cardinality(header: &[u8]) -> Option<u64> {
    let card = u64::from_le_bytes(header[CARD_AT..HEADER_LEN].try_into().ok()?);
    (card >> 63 == 0).then_some(card)
}

pub fn is_dense(header: &[u8]) -> bool {
    header[ENCODING_AT] == DENSE
}

/// One sparse opcode: how many registers it covers and their value.
#[derive(Clone, Copy)]
struct Opcode {
    kind: Kind,
    span: usize,
    value: u8,
    len: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Zero,
    XZero,
    Val,
}

/// Decodes the opcode at `p`; a byte past the end reads as 0, like the
/// NUL after an sds string that Redis reads there.
fn decode(bytes: &[u8], p: usize) -> Opcode {
    let b = bytes[p];
    match b >> 6 {
        0 => Opcode {
            kind: Kind::Zero,
            span: usize::from(b & 0x3f) + 1,
            value: 0,
            len: 1,
        },
        1 => Opcode {
            kind: Kind::XZero,
            span: (usize::from(b & 0x3f) << 8
                | usize::from(bytes.get(p + 1).copied().unwrap_or(0)))
                + 1,
            value: 0,
            len: 2,
        },
        _ => Opcode {
            kind: Kind::Val,
            span: usize::from(b & 3) + 1,
            value: ((b >> 2) & 0x1f) + 1,
            len: 1,
        },
    }
}

fn val_opcode(value: u8, len: usize) -> u8 {
    0x80 | (value - 1) << 2 | (len - 1) as u8
}

/// Appends a ZERO or XZERO opcode for `len` zero registers.
fn push_zeros(seq: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        seq.extend_from_slice(&[0x40 | ((len - 1) >> 8) as u8, (len - 1) as u8]);
    } else {
        seq.push((len - 1) as u8);
    }
}

/// Register `index` of dense registers (`regs`: the bytes after the header).
fn dense_get(regs: &[u8], index: usize) -> u8 {
    let (byte, shift) = (index * 6 / 8, index * 6 % 8);
    let low = regs[byte] >> shift;
    let high = regs
        .get(byte + 1)
        .map_or(0, |b| b.checked_shl(8 - shift as u32).unwrap_or(0));
    (low | high) & 0x3f
}

fn dense_put(regs: &mut [u8], index: usize, value: u8) {
    let (byte, shift) = (index * 6 / 8, index * 6 % 8);
    regs[byte] = (regs[byte] & !(0x3f << shift)) | value << shift;
    if shift > 2 {
        let high_bits = 0x3f >> (8 - shift);
        regs[byte + 1] = (regs[byte + 1] & !high_bits) | value >> (8 - shift);
    }
}

/// PFSELFTEST's register test: dense registers set to `values` read them
/// back; the first register that does not, if any.
pub fn dense_registers_hold(values: &[u8; REGISTERS]) -> Option<usize> {
    let mut regs = vec![0u8; DENSE_LEN - HEADER_LEN];
    for (i, &v) in values.iter().enumerate() {
        dense_put(&mut regs, i, v & 0x3f);
    }
    (0..REGISTERS).find(|&i| dense_get(&regs, i) != values[i] & 0x3f)
}

/// An HLL value being read or edited; its header was checked.
pub struct Sketch {
    pub bytes: Vec<u8>,
}

impl Sketch {
    /// Redis's createHLLObject: sparse, every register zero (one XZERO),
    /// cached cardinality 0.
    pub fn empty() -> Sketch {
        let mut bytes = Vec::with_capacity(HEADER_LEN + 2);
        bytes.extend_from_slice(b"HYLL");
        bytes.extend_from_slice(&[SPARSE, 0, 0, 0]);
        bytes.extend_from_slice(&[0; 8]);
        push_zeros(&mut bytes, XZERO_MAX_LEN);
        Sketch { bytes }
    }

    pub fn is_dense(&self) -> bool {
        is_dense(&self.bytes)
    }

    pub fn invalidate_cache(&mut self) {
        self.bytes[HEADER_LEN - 1] |= 0x80;
    }

    pub fn set_cached_cardinality(&mut self, card: u64) {
        self.bytes[CARD_AT..HEADER_LEN].copy_from_slice(&card.to_le_bytes());
    }

    /// Redis's hllAdd: true when a register grew.
    pub fn add(&mut self, element: &[u8]) -> Result<bool, Corrupt> {
        let (index, run) = register_and_run(element);
        self.set_register(index, run)
    }

    /// Raises register `index` to `value` (hllDenseSet / hllSparseSet).
    pub fn set_register(&mut self, index: usize, value: u8) -> Result<bool, Corrupt> {
        if self.is_dense() {
            let regs = &mut self.bytes[HEADER_LEN..];
            if value <= dense_get(regs, index) {
                return Ok(false);
            }
            dense_put(regs, index, value);
            return Ok(true);
        }
        if value > VAL_MAX_VALUE {
            return self.promote_and_set(index, value);
        }
        self.sparse_set(index, value)
    }

    fn promote_and_set(&mut self, index: usize, value: u8) -> Result<bool, Corrupt> {
        self.make_dense()?;
        self.set_register(index, value)
    }

    /// hllSparseSet below the sparse value limit: splits the opcode that
    /// covers `index`, then merges equal neighbouring VAL opcodes.
    fn sparse_set(&mut self, index: usize, value: u8) -> Result<bool, Corrupt> {
        // Step 1: the opcode covering `index`, and the one before it.
        let (mut p, mut first, mut prev) = (HEADER_LEN, 0usize, None);
        let mut op = None;
        while p < self.bytes.len() {
            let here = decode(&self.bytes, p);
            if index < first + here.span {
                op = Some(here);
                break;
            }
            prev = Some(p);
            p += here.len;
            first += here.span;
        }
        let op = op.ok_or(Corrupt)?;
        // Step 2: nothing to do, an in-place change, or a split.
        if op.kind == Kind::Val && op.value >= value {
            return Ok(false);
        }
        if op.span == 1 && op.kind != Kind::XZero {
            self.bytes[p] = val_opcode(value, 1);
        } else {
            let last = first + op.span - 1;
            let mut seq = Vec::with_capacity(5);
            let before = index - first;
            let after = last - index;
            if op.kind == Kind::Val {
                if before > 0 {
                    seq.push(val_opcode(op.value, before));
                }
                seq.push(val_opcode(value, 1));
                if after > 0 {
                    seq.push(val_opcode(op.value, after));
                }
            } else {
                if before > 0 {
                    push_zeros(&mut seq, before);
                }
                seq.push(val_opcode(value, 1));
                if after > 0 {
                    push_zeros(&mut seq, after);
                }
            }
            // Step 3: a value that would outgrow the sparse limit turns dense.
            // (hll-sparse-max-bytes, live.)
            let max = crate::collection_limits::hll_sparse_max_bytes();
            if seq.len() > op.len && self.bytes.len() + seq.len() - op.len > max {
                return self.promote_and_set(index, value);
            }
            let end = (p + op.len).min(self.bytes.len());
            self.bytes.splice(p..end, seq);
        }
        // Step 4: merge adjacent equal VALs, scanning 5 opcodes from `prev`.
        let mut q = prev.unwrap_or(HEADER_LEN);
        let mut budget = 5;
        while q < self.bytes.len() && budget > 0 {
            budget -= 1;
            let here = decode(&self.bytes, q);
            if here.kind != Kind::Val {
                q += here.len;
                continue;
            }
            if let Some(&next_byte) = self.bytes.get(q + 1) {
                let next = decode(&self.bytes, q + 1);
                let len = here.span + next.span;
                if next_byte & 0x80 != 0 && next.value == here.value && len <= VAL_MAX_LEN {
                    self.bytes[q + 1] = val_opcode(here.value, len);
                    self.bytes.remove(q);
                    continue;
                }
            }
            q += 1;
        }
        self.invalidate_cache();
        Ok(true)
    }

    /// Redis's hllSparseToDense (the header, cached cardinality included,
    /// is kept); a corrupt sparse value is left as it was.
    pub fn make_dense(&mut self) -> Result<(), Corrupt> {
        if self.is_dense() {
            return Ok(());
        }
        let mut dense = vec![0u8; DENSE_LEN];
        dense[..HEADER_LEN].copy_from_slice(&self.bytes[..HEADER_LEN]);
        dense[ENCODING_AT] = DENSE;
        let regs = &mut dense[HEADER_LEN..];
        walk_runs(&self.bytes, |first, span, value| {
            (first..first + span).for_each(|i| dense_put(regs, i, value))
        })?;
        self.bytes = dense;
        Ok(())
    }

    /// Every register of a dense value, in order (PFDEBUG GETREG).
    pub fn dense_registers(&self) -> Vec<u8> {
        let regs = &self.bytes[HEADER_LEN..];
        (0..REGISTERS).map(|i| dense_get(regs, i)).collect()
    }

    /// A sparse value's opcodes as PFDEBUG DECODE writes them: `z:LEN`,
    /// `Z:LEN` (XZERO), `v:VALUE,LEN`, space-separated.
    pub fn decode_opcodes(&self) -> String {
        let mut text = String::new();
        let mut p = HEADER_LEN;
        while p < self.bytes.len() {
            let op = decode(&self.bytes, p);
            if !text.is_empty() {
                text.push(' ');
            }
            text += &match op.kind {
                Kind::Zero => format!("z:{}", op.span),
                Kind::XZero => format!("Z:{}", op.span),
                Kind::Val => format!("v:{},{}", op.value, op.span),
            };
            p += op.len;
        }
        text
    }
}

/// Raises each of `max` to the HLL value's register (Redis's hllMerge).
pub fn merge_max(bytes: &[u8], max: &mut [u8; REGISTERS]) -> Result<(), Corrupt> {
    if is_dense(bytes) {
        let regs = &bytes[HEADER_LEN..];
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(regs, i));
        }
        return Ok(());
    }
    walk_runs(bytes, |first, span, value| {
        for m in &mut max[first..first + span] {
            *m = (*m).max(value);
        }
    })
}

/// The register histogram of an HLL value (hllCount's first half).
pub fn histogram(bytes: &[u8]) -> Result<Histogram, Corrupt> {
    let mut h = [0u32; 64];
    if is_dense(bytes) {
        let regs = &bytes[HEADER_LEN..];
        (0..REGISTERS).for_each(|i| h[usize::from(dense_get(regs, i))] += 1);
        return Ok(h);
    }
    let mut nonzero = 0;
    walk_runs(bytes, |_, span, value| {
        h[usize::from(value)] += span as u32;
        nonzero += span as u32;
    })?;
    h[0] = REGISTERS as u32 - nonzero;
    Ok(h)
}

/// The histogram of raw registers (PFCOUNT over several keys).
pub fn raw_histogram(registers: &[u8; REGISTERS]) -> Histogram {
    let mut h = [0u32; 64];
    registers
        .iter()
        .for_each(|&r| h[usize::from(r & 0x3f)] += 1);
    h
}

/// Calls `f(first register, span, value)` for each VAL run of a sparse
/// value; fails unless the runs cover exactly the registers (a VAL run
/// past the last one fails before `f` sees it).
fn walk_runs(bytes: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<(), Corrupt> {
    let (mut p, mut index) = (HEADER_LEN, 0usize);
    while p < bytes.len() {
        let op = decode(bytes, p);
        if op.kind == Kind::Val {
            if index + op.span > REGISTERS {
                return Err(Corrupt);
            }
            f(index, op.span, op.value);
        }
        index += op.span;
        p += op.len;
    }
    if index == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(encoding: u8, card: [u8; 8]) -> Vec<u8> {
        let mut h = b"HYLL".to_vec();
        h.extend_from_slice(&[encoding, 0, 0, 0]);
        h.extend_from_slice(&card);
        h
    }

    #[test]
    fn a_new_sketch_is_one_xzero_with_a_zero_count() {
        let mut want = header(SPARSE, [0; 8]);
        want.extend_from_slice(&[0x7f, 0xff]);
        let sketch = Sketch::empty();
        assert_eq!(sketch.bytes, want);
        assert!(is_valid_header(&sketch.bytes, sketch.bytes.len()));
        assert_eq!(cached_cardinality(&sketch.bytes), Some(0));
        assert_eq!(histogram(&sketch.bytes).unwrap()[0], REGISTERS as u32);
    }

    #[test]
    fn sparse_sets_split_and_merge_runs() {
        let mut s = Sketch::empty();
        // Register 0 = 3: VAL(3,1) XZERO(16383).
        assert_eq!(s.set_register(0, 3), Ok(true));
        assert_eq!(&s.bytes[HEADER_LEN..], &[0x88, 0x7f, 0xfe]);
        assert_eq!(s.bytes[HEADER_LEN - 1], 0x80, "the cache is invalidated");
        assert_eq!(s.set_register(0, 2), Ok(false));
        // Register 1 = 3 merges into VAL(3,2).
        assert_eq!(s.set_register(1, 3), Ok(true));
        assert_eq!(&s.bytes[HEADER_LEN..], &[0x89, 0x7f, 0xfd]);
        // Register 100: XZERO(98) VAL(1,1) XZERO(16283).
        assert_eq!(s.set_register(100, 1), Ok(true));
        assert_eq!(&s.bytes[HEADER_LEN..], &[0x89, 0x40, 97, 0x80, 0x7f, 0x9a]);
        let h = histogram(&s.bytes).unwrap();
        assert_eq!((h[0], h[1], h[3]), (REGISTERS as u32 - 3, 1, 2));
    }

    #[test]
    fn big_values_and_big_sparse_turn_dense() {
        let mut s = Sketch::empty();
        assert_eq!(s.set_register(5, 40), Ok(true));
        assert_eq!(s.bytes.len(), DENSE_LEN);
        assert!(is_dense(&s.bytes));
        assert_eq!(dense_get(&s.bytes[HEADER_LEN..], 5), 40);
        let mut s = Sketch::empty();
        let mut i = 0;
        while !is_dense(&s.bytes) {
            // Isolated registers: each costs a VAL and a ZERO opcode.
            assert!(s.bytes.len() <= crate::collection_limits::hll_sparse_max_bytes());
            s.set_register(i, 1).unwrap();
            i += 3;
        }
        let h = histogram(&s.bytes).unwrap();
        assert_eq!(h[1] as usize, i / 3);
    }

    #[test]
    fn dense_registers_round_trip_at_every_alignment() {
        let mut regs = vec![0u8; REGISTERS * 6 / 8];
        for i in 0..REGISTERS {
            dense_put(&mut regs, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i % 64) as u8, "register {i}");
        }
    }

    #[test]
    fn invalid_values_are_told_apart() {
        let dense = header(DENSE, [0; 8]);
        assert!(!is_valid_header(&dense, 100));
        assert!(is_valid_header(&dense, DENSE_LEN));
        assert!(!is_valid_header(&header(2, [0; 8]), 18));
        assert!(!is_valid_header(b"HYLX\x01\0\0\0\0\0\0\0\0\0\0\0", 16));
        assert_eq!(
            cached_cardinality(&header(SPARSE, [5, 0, 0, 0, 0, 0, 0, 0x80])),
            None
        );
        // Runs that cover too few or too many registers.
        let mut short = header(SPARSE, [0; 8]);
        short.push(0x00);
        assert_eq!(histogram(&short), Err(Corrupt));
        let mut s = Sketch { bytes: short };
        assert_eq!(s.set_register(10, 1), Err(Corrupt));
        assert_eq!(s.make_dense(), Err(Corrupt));
        let mut long = header(SPARSE, [0; 8]);
        long.extend_from_slice(&[0x7f, 0xff, 0x80]);
        let mut max = [0u8; REGISTERS];
        assert_eq!(merge_max(&long, &mut max), Err(Corrupt));
        assert_eq!(histogram(&long), Err(Corrupt));
    }
}
