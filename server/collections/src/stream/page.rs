//! A stream page: its entries in ID order.
//!
//! ```text
//! count:u32 | (ms:u64 | seq:u64 | fields:u32 | (len:u32 | bytes) x 2*fields) x count
//! ```
//!
//! All integers little endian. Parsing is bounds-checked: a corrupt page
//! is [`Corrupt`], never a panic.

use super::entries::Entries;
use super::reader::Reader;
use super::StreamId;
use crate::packed::Corrupt;

/// One entry of a page: its ID and its field, value, field, value ...
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub id: StreamId,
    pub fields: Vec<&'a [u8]>,
}

/// Bytes an entry of these fields and values takes in a page.
pub fn entry_bytes(fields: &[&[u8]]) -> usize {
    20 + fields.iter().map(|f| 4 + f.len()).sum::<usize>()
}

/// The entries of `page`.
pub fn entries(page: &[u8]) -> Result<Vec<Entry<'_>>, Corrupt> {
    let mut out = Vec::new();
    walk(page, |id, n, fields| {
        let mut list = Vec::with_capacity(n.min(page.len() / 4));
        for _ in 0..n {
            list.push(fields.bytes()?);
        }
        out.push(Entry { id, fields: list });
        Ok(())
    })?;
    Ok(out)
}

/// Appends the entries of `page` to `out` without a vector per entry (a
/// whole stream read for DUMP); returns how many there were.
pub fn entries_into(page: &[u8], out: &mut Entries) -> Result<usize, Corrupt> {
    walk(page, |id, n, fields| {
        for _ in 0..n {
            out.add_field(fields.bytes()?);
        }
        out.end_entry(id);
        Ok(())
    })
}

/// Calls `entry` with each entry's ID, its count of fields and values,
/// and the reader positioned on them (it must read them all); returns the
/// page's count.
fn walk<'p>(
    page: &'p [u8],
    mut entry: impl FnMut(StreamId, usize, &mut Reader<'p>) -> Result<(), Corrupt>,
) -> Result<usize, Corrupt> {
    let mut reader = Reader::new(page);
    let count = reader.u32()?;
    for _ in 0..count {
        let id = StreamId::new(reader.u64()?, reader.u64()?);
        let n = reader.u32()? as usize;
        entry(id, n.checked_mul(2).ok_or(Corrupt)?, &mut reader)?;
    }
    if reader.left() != 0 {
        return Err(Corrupt);
    }
    Ok(count as usize)
}

/// Appends an entry to `page` (an empty vector: a new page).
pub fn append(page: &mut Vec<u8>, id: StreamId, fields: &[&[u8]]) -> Result<(), Corrupt> {
    if page.is_empty() {
        page.extend_from_slice(&0u32.to_le_bytes());
    }
    let count = u32::from_le_bytes(page.get(..4).ok_or(Corrupt)?.try_into().expect("4 bytes"));
    page[..4].copy_from_slice(&count.checked_add(1).ok_or(Corrupt)?.to_le_bytes());
    write_entry(page, id, fields);
    Ok(())
}

fn write_entry(page: &mut Vec<u8>, id: StreamId, fields: &[&[u8]]) {
    page.reserve(entry_bytes(fields));
    page.extend_from_slice(&id.ms.to_le_bytes());
    page.extend_from_slice(&id.seq.to_le_bytes());
    page.extend_from_slice(&((fields.len() / 2) as u32).to_le_bytes());
    for f in fields {
        page.extend_from_slice(&(f.len() as u32).to_le_bytes());
        page.extend_from_slice(f);
    }
}

/// A page holding `entries`.
pub fn encode<'a>(entries: impl IntoIterator<Item = &'a Entry<'a>>) -> Vec<u8> {
    let mut page = vec![0u8; 4];
    let mut count = 0u32;
    for e in entries {
        write_entry(&mut page, e.id, &e.fields);
        count += 1;
    }
    page[..4].copy_from_slice(&count.to_le_bytes());
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_round_trip_and_reject_corruption() {
        let mut page = Vec::new();
        append(&mut page, StreamId::new(1, 0), &[b"f", b"v"]).unwrap();
        append(&mut page, StreamId::new(1, 1), &[b"a", b"", b"b", b"cc"]).unwrap();
        let parsed = entries(&page).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].fields, vec![&b"a"[..], b"", b"b", b"cc"]);
        assert_eq!(encode(&parsed), page);
        assert_eq!(
            page.len(),
            4 + entry_bytes(&[b"f", b"v"]) + entry_bytes(&[b"a", b"", b"b", b"cc"])
        );
        for cut in 0..page.len() {
            assert_eq!(entries(&page[..cut]), Err(Corrupt));
        }
        let mut bad = page.clone();
        bad[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(entries(&bad), Err(Corrupt));
    }
}
