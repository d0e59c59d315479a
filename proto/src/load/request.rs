//! `LoadRequest { key, command }`: encoded through a reusable
//! `FlatBufferBuilder`, or written straight into a ring reservation
//! (`Producer::reserve(request_len(..))`, then [`write_request`] into
//! `Grant::payload_mut()`: no builder, no copy); decoded with the verifier.

use flatbuffers::{FlatBufferBuilder, InvalidFlatbuffer};

use crate::schema::{LoadRequest, LoadRequestArgs};
use crate::Format;

/// The command a plain read-through load names (GET, MGET and GETEX misses).
pub const DEFAULT_COMMAND: &str = "GET";

/// Why a payload is not a usable `LoadRequest`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("expected a LoadRequest FlatBuffer, got format {0:?}")]
    NotFlatBuffer(Format),
    #[error("not a LoadRequest: {0}")]
    Invalid(#[from] InvalidFlatbuffer),
    #[error("LoadRequest without a key")]
    MissingKey,
}

/// Why a `LoadRequest` could not be written in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{needed} bytes needed, the buffer has {available}")]
    BufferTooSmall { needed: usize, available: usize },
    #[error("a field of {0} bytes is longer than a FlatBuffer can hold")]
    TooLong(usize),
}

/// A verified `LoadRequest`, borrowing the payload.
#[derive(Clone, Copy, Debug)]
pub struct LoadRequestRef<'a> {
    /// Never empty.
    pub key: &'a [u8],
    pub command: Option<&'a str>,
    table: LoadRequest<'a>,
}

impl<'a> LoadRequestRef<'a> {
    /// The command's arguments (none for a plain load).
    pub fn args(&self) -> impl Iterator<Item = &'a [u8]> {
        self.table
            .args()
            .into_iter()
            .flatten()
            .map(|a| a.value().map_or(&[][..], |v| v.bytes()))
    }
}

/// Encodes `LoadRequest { key, command }` into `fbb` (reset first) and
/// returns the finished bytes.
pub fn encode_request<'b>(
    fbb: &'b mut FlatBufferBuilder<'static>,
    key: &[u8],
    command: &str,
) -> &'b [u8] {
    fbb.reset();
    let key = fbb.create_vector(key);
    let command = fbb.create_string(command);
    let req = LoadRequest::create(
        fbb,
        &LoadRequestArgs {
            key: Some(key),
            command: Some(command),
            args: None,
        },
    );
    fbb.finish(req, None);
    fbb.finished_data()
}

// The in-place layout (all little-endian, offsets from the payload start):
//   0  u32  root: the table is at 12
//   4  vtable: u16 8 (its size), u16 12 (table size), u16 4 (key), u16 8 (command)
//  12  table: i32 8 (the vtable is 8 bytes before), u32 -> key, u32 -> command
//  24  key vector: u32 len, bytes, zero padding to 4
//   .  command string: u32 len, bytes, NUL, zero padding to 4
const TABLE_AT: usize = 12;
const KEY_AT: usize = 24;

/// Bytes [`write_request`] writes for a key and command of these lengths.
pub fn request_len(key_len: usize, command_len: usize) -> usize {
    KEY_AT + 4 + key_len.next_multiple_of(4) + 4 + (command_len + 1).next_multiple_of(4)
}

/// Writes `LoadRequest { key, command }` into `dst` (e.g. a ring grant's
/// payload, sized with [`request_len`]) and returns the bytes written.
pub fn write_request(dst: &mut [u8], key: &[u8], command: &str) -> Result<usize, EncodeError> {
    for field in [key.len(), command.len()] {
        if field > (i32::MAX as usize) / 2 {
            return Err(EncodeError::TooLong(field));
        }
    }
    let needed = request_len(key.len(), command.len());
    let Some(dst) = dst.get_mut(..needed) else {
        return Err(EncodeError::BufferTooSmall {
            needed,
            available: dst.len(),
        });
    };
    let command_at = KEY_AT + 4 + key.len().next_multiple_of(4);
    let u16s: [(usize, u16); 4] = [(4, 8), (6, 12), (8, 4), (10, 8)];
    for (at, v) in u16s {
        dst[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    let u32s = [
        (0, TABLE_AT as u32),
        (TABLE_AT, 8),
        (TABLE_AT + 4, (KEY_AT - (TABLE_AT + 4)) as u32),
        (TABLE_AT + 8, (command_at - (TABLE_AT + 8)) as u32),
    ];
    for (at, v) in u32s {
        dst[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    put_bytes(&mut dst[KEY_AT..command_at], key);
    put_bytes(&mut dst[command_at..], command.as_bytes());
    Ok(needed)
}

/// A FlatBuffers byte vector: u32 length, bytes, zeros (NUL for a string).
fn put_bytes(dst: &mut [u8], bytes: &[u8]) {
    dst[..4].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
    dst[4..4 + bytes.len()].copy_from_slice(bytes);
    dst[4 + bytes.len()..].fill(0);
}

/// Verifies `payload` as a `LoadRequest` with a non-empty key.
pub fn decode_request(format: Format, payload: &[u8]) -> Result<LoadRequestRef<'_>, RequestError> {
    if format != Format::FlatBuffer {
        return Err(RequestError::NotFlatBuffer(format));
    }
    let table = flatbuffers::root::<LoadRequest>(payload)?;
    match table.key() {
        Some(k) if !k.is_empty() => Ok(LoadRequestRef {
            key: k.bytes(),
            command: table.command(),
            table,
        }),
        _ => Err(RequestError::MissingKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encoders_decode_to_the_same_request() {
        let mut fbb = FlatBufferBuilder::new();
        for key in [
            &b"k"[..],
            b"user:1",
            b"abcd",
            b"\x00\xff binary key of some length",
        ] {
            for command in ["", "GET", "GETEX"] {
                let built = encode_request(&mut fbb, key, command).to_vec();
                let mut placed = vec![0xAAu8; request_len(key.len(), command.len()) + 3];
                let n = write_request(&mut placed, key, command).unwrap();
                assert_eq!(n, request_len(key.len(), command.len()));
                for bytes in [&built[..], &placed[..n]] {
                    let req = decode_request(Format::FlatBuffer, bytes).unwrap();
                    assert_eq!((req.key, req.command), (key, Some(command)));
                    assert_eq!(req.args().count(), 0);
                }
            }
        }
    }

    #[test]
    fn refuses_what_is_not_a_load_request() {
        let mut fbb = FlatBufferBuilder::new();
        let ok = encode_request(&mut fbb, b"user:1", DEFAULT_COMMAND).to_vec();
        assert_eq!(
            decode_request(Format::Raw, &ok).unwrap_err(),
            RequestError::NotFlatBuffer(Format::Raw)
        );
        let empty = encode_request(&mut fbb, b"", DEFAULT_COMMAND).to_vec();
        assert_eq!(
            decode_request(Format::FlatBuffer, &empty).unwrap_err(),
            RequestError::MissingKey
        );
        assert!(matches!(
            decode_request(Format::FlatBuffer, b"junk"),
            Err(RequestError::Invalid(_))
        ));
        let e = decode_request(Format::FlatBuffer, b"junk").unwrap_err();
        assert!(e.to_string().starts_with("not a LoadRequest: "), "{e}");
        let mut small = [0u8; 8];
        assert_eq!(
            write_request(&mut small, b"k", "GET"),
            Err(EncodeError::BufferTooSmall {
                needed: 40,
                available: 8
            })
        );
    }
}
