//! The root of a paged collection: a collection past its compact size is a
//! root item plus page items, each page a packed value (`packed.rs`) of
//! some of the elements. Every root starts with the same header:
//!
//! ```text
//! encoding:u8 (1 = paged) | generation:u64 | version:u64
//!   | first page:u64 | end page:u64 | type-specific
//! ```
//!
//! The generation names the root's pages (the engine derives page keys
//! from the user key and it, and deletes pages whose root no longer
//! carries it); the version moves on every write, so a command that
//! planned its pages from a root can tell the root is unchanged; every
//! page's number lies in `first..end` (what the engine deletes when the
//! root goes). All integers little endian. A page is a packed value; the
//! elements of a collection are its pages' elements in page order.

use crate::packed::Corrupt;

/// The encoding byte of a paged root (the packed form's is 0).
pub const ENCODING_PAGED: u8 = 1;
/// Bytes of the common root header.
pub const ROOT_HEADER_LEN: usize = 33;

/// The common header of a paged root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootHeader {
    pub generation: u64,
    pub version: u64,
    /// Every page's number lies in this range.
    pub pages: std::ops::Range<u64>,
}

impl RootHeader {
    /// Parses the header; returns it and the type-specific rest.
    pub fn parse(bytes: &[u8]) -> Result<(RootHeader, &[u8]), Corrupt> {
        if bytes.len() < ROOT_HEADER_LEN || bytes[0] != ENCODING_PAGED {
            return Err(Corrupt);
        }
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let header = RootHeader {
            generation: word(1),
            version: word(9),
            pages: word(17)..word(25),
        };
        Ok((header, &bytes[ROOT_HEADER_LEN..]))
    }

    /// Appends the header to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut bytes = [0u8; ROOT_HEADER_LEN];
        self.write_to(&mut bytes);
        out.extend_from_slice(&bytes);
    }

    /// The header's bytes into `out`'s first [`ROOT_HEADER_LEN`].
    pub fn write_to(&self, out: &mut [u8]) {
        out[0] = ENCODING_PAGED;
        out[1..9].copy_from_slice(&self.generation.to_le_bytes());
        out[9..17].copy_from_slice(&self.version.to_le_bytes());
        out[17..25].copy_from_slice(&self.pages.start.to_le_bytes());
        out[25..33].copy_from_slice(&self.pages.end.to_le_bytes());
    }

    /// The header of the next write of this root.
    pub fn next(&self) -> RootHeader {
        RootHeader {
            version: self.version.wrapping_add(1),
            ..self.clone()
        }
    }
}

/// A collection laid out as a root and its pages, ready to store: how a
/// big value built whole (RESTORE, COPY, a STORE command) is written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Built {
    pub root: Vec<u8>,
    /// (page number, packed page), in page order.
    pub pages: Vec<(u64, Vec<u8>)>,
}

/// The packed value holding every element of `pages` (each a packed
/// value, in page order): a paged collection read whole.
pub fn flatten<'a>(pages: impl IntoIterator<Item = crate::Packed<'a>>) -> Result<Vec<u8>, Corrupt> {
    let mut writer = crate::PackedWriter::default();
    for page in pages {
        for element in page.iter() {
            writer.push(element?);
        }
    }
    Ok(writer.finish())
}

/// Whether a stored collection value is a paged root.
pub fn is_paged(bytes: &[u8]) -> bool {
    bytes.first() == Some(&ENCODING_PAGED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_other_values() {
        let header = RootHeader {
            generation: 7,
            version: 1,
            pages: 3..5,
        };
        let mut bytes = Vec::new();
        header.next().write(&mut bytes);
        bytes.extend_from_slice(b"rest");
        let (parsed, rest) = RootHeader::parse(&bytes).expect("a root");
        assert_eq!((parsed.version, parsed.pages), (2, 3..5));
        assert_eq!(rest, b"rest");
        assert!(is_paged(&bytes));
        assert_eq!(RootHeader::parse(&[0, 1, 2]), Err(Corrupt));
        assert_eq!(RootHeader::parse(&bytes[..10]), Err(Corrupt));
    }

    #[test]
    fn flatten_concatenates_pages_in_order() {
        let page = |elements: &[&[u8]]| {
            let mut w = crate::PackedWriter::default();
            elements.iter().for_each(|e| w.push(e));
            w.finish()
        };
        let (a, b) = (page(&[b"x", b"y"]), page(&[b"z"]));
        let pages = [
            crate::Packed::parse(&a).unwrap(),
            crate::Packed::parse(&b).unwrap(),
        ];
        let whole = flatten(pages).unwrap();
        let parsed = crate::Packed::parse(&whole).unwrap();
        assert_eq!(parsed.to_vec().unwrap(), vec![&b"x"[..], b"y", b"z"]);
    }
}
