//! The root of a paged collection: a collection past its compact size is a
//! root item plus page items, each page a packed value (`packed.rs`) of
//! some of the elements. Every root starts with the same header:
//!
//! ```text
//! encoding:u8 (1 = paged) | generation:u64 | version:u64 | type-specific
//! ```
//!
//! The generation names the root's pages (the engine derives page keys
//! from the user key and it, and deletes pages whose root no longer
//! carries it); the version moves on every write, so a command that
//! planned its pages from a root can tell the root is unchanged. All
//! integers little endian.

use crate::packed::Corrupt;

/// The encoding byte of a paged root (the packed form's is 0).
pub const ENCODING_PAGED: u8 = 1;
/// Bytes of the common root header.
pub const ROOT_HEADER_LEN: usize = 17;

/// The common header of a paged root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootHeader {
    pub generation: u64,
    pub version: u64,
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
        };
        Ok((header, &bytes[ROOT_HEADER_LEN..]))
    }

    /// Appends the header to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(ENCODING_PAGED);
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
    }

    /// The header of the next write of this root.
    pub fn next(&self) -> RootHeader {
        RootHeader {
            version: self.version.wrapping_add(1),
            ..*self
        }
    }
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
        };
        let mut bytes = Vec::new();
        header.next().write(&mut bytes);
        bytes.extend_from_slice(b"rest");
        let (parsed, rest) = RootHeader::parse(&bytes).expect("a root");
        assert_eq!(parsed.version, 2);
        assert_eq!(rest, b"rest");
        assert!(is_paged(&bytes));
        assert_eq!(RootHeader::parse(&[0, 1, 2]), Err(Corrupt));
        assert_eq!(RootHeader::parse(&bytes[..10]), Err(Corrupt));
    }
}
