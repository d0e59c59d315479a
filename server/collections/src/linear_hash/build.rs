//! A whole paged hash or set from its packed form (RESTORE, COPY, a STORE
//! command, the switch from packed to paged).

use super::{entry_bytes, Root};
use crate::packed::{Corrupt, Packed, PackedWriter};
use crate::paged::Built;

/// `packed`'s elements and the root sized for them (entries of `arity`
/// elements).
fn sized<'a>(
    packed: Packed<'a>,
    arity: usize,
    generation: u64,
) -> Result<(Vec<&'a [u8]>, Root), Corrupt> {
    let elements = packed.to_vec()?;
    if elements.len() % arity != 0 {
        return Err(Corrupt);
    }
    let bytes = entry_bytes(elements.iter().copied());
    let count = (elements.len() / arity) as u64;
    Ok((elements, Root::sized_for(generation, count, bytes)))
}

/// The pages [`build`] stores `packed` in.
pub fn build_range(packed: Packed<'_>, arity: usize) -> Result<std::ops::Range<u64>, Corrupt> {
    Ok(0..sized(packed, arity, 0)?.1.page_count())
}

/// The paged form of `packed` (entries of `arity` elements, keys unique)
/// under a root of `generation`, sized so that no split is due.
pub fn build(packed: Packed<'_>, arity: usize, generation: u64) -> Result<Built, Corrupt> {
    let (elements, root) = sized(packed, arity, generation)?;
    let mut writers: Vec<PackedWriter> = (0..root.page_count())
        .map(|_| PackedWriter::default())
        .collect();
    for entry in elements.chunks(arity) {
        let page = &mut writers[root.page_of_key(entry[0]) as usize];
        entry.iter().for_each(|e| page.push(e));
    }
    let pages = writers
        .into_iter()
        .enumerate()
        .filter(|(_, w)| w.count() > 0)
        .map(|(n, w)| (n as u64, w.finish()))
        .collect();
    Ok(Built {
        root: root.encode(),
        pages,
    })
}
