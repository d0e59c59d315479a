//! The inline buffers' and pages' bytes: packed values edited in their
//! own buffers (pops, reversal of the tail buffer, replacement).

use std::ops::Range;

use super::End;
use crate::packed::{keep_in_place, Corrupt, Packed, PackedWriter, ENCODING_PACKED};

/// The packed view of an inline buffer (empty bytes: none).
pub(super) fn view(bytes: &[u8]) -> Result<Packed<'_>, Corrupt> {
    match bytes.is_empty() {
        true => Ok(Packed::empty()),
        false => Packed::parse(bytes),
    }
}

/// Room an inline buffer's copy keeps for a push of a few short
/// elements (no reallocation).
pub(super) const PUSH_ROOM: usize = 64;

/// The bytes of an empty packed value.
pub(super) const EMPTY: [u8; 2] = [ENCODING_PACKED, 0];

/// Takes `n` elements off `end` of the packed value `bytes` (in its own
/// buffer), handing them to `f` in pop order. (Off the front the split
/// is `n` length prefixes in; off the back every prefix is walked.)
pub(super) fn pop_from(
    bytes: &mut Vec<u8>,
    end: End,
    n: usize,
    f: &mut impl FnMut(&[u8]),
) -> Result<(), Corrupt> {
    let old = Packed::parse(bytes)?;
    let held = old.len();
    if n == 0 || n > held {
        return Err(Corrupt);
    }
    // Only the popped elements are decoded: the split is found from the
    // length prefixes, the kept ones are moved encoded.
    let split = match end {
        End::Head => n,
        End::Tail => held - n,
    };
    let cut = old.offset_of(split)?;
    let (taken, keep) = match end {
        End::Head => (&old.body()[..cut], cut..old.body_len()),
        End::Tail => (&old.body()[cut..], 0..cut),
    };
    let mut taken = Packed::from_body(taken, n).iter();
    match end {
        End::Head => taken.try_for_each(|e| e.map(&mut *f))?,
        End::Tail if n == 1 => f(taken.next().ok_or(Corrupt)??),
        End::Tail => {
            let all: Vec<&[u8]> = taken.collect::<Result<_, _>>()?;
            all.iter().rev().for_each(|e| f(e));
        }
    }
    keep_in_place(bytes, keep, (held - n) as u64)
}

/// The packed value of `bytes`' elements in reverse order (a tail
/// buffer spilled as a page, or a page refilling it).
pub(super) fn reversed(bytes: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let packed = Packed::parse(bytes)?;
    // Each element's encoding (its length, then its bytes) moves whole to
    // the mirrored place, in one pass: no vector of elements and no
    // re-encoding (a page's reversal was ~90 instructions an element).
    let body = packed.body();
    let mut mirrored = vec![0u8; body.len()];
    let mut elements = packed.iter();
    let mut start = 0;
    while let Some(element) = elements.next() {
        element?;
        let end = body.len() - elements.rest_len();
        mirrored[body.len() - end..body.len() - start].copy_from_slice(&body[start..end]);
        start = end;
    }
    if start == body.len() {
        let mut writer = PackedWriter::with_capacity(body.len() + PUSH_ROOM);
        writer.push_encoded(&mirrored, packed.len() as u64);
        return Ok(writer.finish());
    }
    // (Bytes past the last element: only the elements are kept.)
    let mut elements = packed.to_vec()?;
    elements.reverse();
    let mut writer = PackedWriter::with_capacity(packed.body_len() + PUSH_ROOM);
    elements.iter().for_each(|e| writer.push(e));
    Ok(writer.finish())
}

/// The packed value `bytes` with element `at` replaced by `element`.
pub(super) fn replaced(bytes: &[u8], at: usize, element: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let old = Packed::parse(bytes)?.to_vec()?;
    if at >= old.len() {
        return Err(Corrupt);
    }
    Ok(encode(old.iter().enumerate().map(|(i, e)| {
        if i == at {
            element
        } else {
            *e
        }
    })))
}

/// Adds to `out` the elements of `part` (holding list elements `held`)
/// that lie in `range`.
pub(super) fn take_range<'a>(
    out: &mut Vec<&'a [u8]>,
    part: Packed<'a>,
    held: Range<u64>,
    range: &Range<u64>,
) -> Result<(), Corrupt> {
    let (start, end) = (range.start.max(held.start), range.end.min(held.end));
    if start >= end {
        return Ok(());
    }
    let skip = (start - held.start) as usize;
    for element in part.iter().skip(skip).take((end - start) as usize) {
        out.push(element?);
    }
    Ok(())
}

/// One packed value of the elements of `head` then `tail` (last first).
pub(super) fn flatten_inline(head: &[u8], tail: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let (head, tail) = (view(head)?, view(tail)?);
    let mut writer = PackedWriter::with_capacity(head.body_len() + tail.body_len());
    writer.push_encoded(head.body(), head.len() as u64);
    let mut tail = tail.to_vec()?;
    tail.reverse();
    tail.iter().for_each(|e| writer.push(e));
    Ok(writer.finish())
}

pub(super) fn encode<'e>(elements: impl IntoIterator<Item = &'e [u8]>) -> Vec<u8> {
    crate::list::encode(elements).value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reversal moves each element's encoding whole: short and long
    /// elements (one- and two-byte lengths), empty ones, none at all.
    #[test]
    fn reversed_keeps_every_element_in_mirrored_order() {
        let long = vec![b'x'; 300];
        let shapes: [Vec<&[u8]>; 4] = [
            vec![],
            vec![b"a"],
            vec![b"abc", b"", &long, b"de", b"f"],
            (0..200)
                .map(|i| {
                    if i % 7 == 0 {
                        &long[..i]
                    } else {
                        &b"0123456789"[..i % 10]
                    }
                })
                .collect(),
        ];
        for elements in shapes {
            let want: Vec<&[u8]> = elements.iter().rev().copied().collect();
            let got = reversed(&encode(elements.iter().copied())).unwrap();
            assert_eq!(Packed::parse(&got).unwrap().to_vec().unwrap(), want);
            assert_eq!(got, encode(want.iter().copied()));
        }
    }

    /// A corrupt element is an error, never a panic or a shorter list.
    #[test]
    fn reversed_refuses_a_corrupt_value() {
        let mut bytes = encode([&b"abc"[..], b"def"]);
        let cut = bytes.len() - 2;
        bytes.truncate(cut);
        assert_eq!(reversed(&bytes), Err(Corrupt));
    }
}
