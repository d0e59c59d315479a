//! `Invalidation { keys, resync }`: keys the server must drop, pushed
//! unsolicited by a loader (kind `Invalidation`, id 0, format FlatBuffer).

use flatbuffers::{FlatBufferBuilder, ForwardsUOffset, InvalidFlatbuffer, Vector};

use crate::schema::{Arg, ArgArgs, Invalidation, InvalidationArgs};

/// Why a payload is not an `Invalidation`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidationError {
    #[error("malformed Invalidation: {0}")]
    Malformed(#[from] InvalidFlatbuffer),
}

/// A verified `Invalidation`, borrowing the payload.
#[derive(Clone, Copy, Debug)]
pub struct InvalidationRef<'a> {
    /// Changes may have been missed: every loaded key may be stale.
    pub resync: bool,
    keys: Option<Vector<'a, ForwardsUOffset<Arg<'a>>>>,
}

impl<'a> InvalidationRef<'a> {
    /// The keys to drop (an `Arg` without a value is an empty key).
    pub fn keys(&self) -> impl Iterator<Item = &'a [u8]> {
        self.keys
            .into_iter()
            .flatten()
            .map(|k| k.value().map_or(&[][..], |v| v.bytes()))
    }
}

/// Encodes `Invalidation { keys, resync }` into `fbb` (reset first).
pub fn encode_invalidation<'b, K: AsRef<[u8]>>(
    fbb: &'b mut FlatBufferBuilder<'static>,
    keys: &[K],
    resync: bool,
) -> &'b [u8] {
    fbb.reset();
    let args: Vec<_> = keys
        .iter()
        .map(|k| {
            let value = Some(fbb.create_vector(k.as_ref()));
            Arg::create(fbb, &ArgArgs { value })
        })
        .collect();
    let keys = Some(fbb.create_vector(&args));
    let inv = Invalidation::create(fbb, &InvalidationArgs { keys, resync });
    fbb.finish(inv, None);
    fbb.finished_data()
}

/// Verifies an `Invalidation` payload.
pub fn decode_invalidation(payload: &[u8]) -> Result<InvalidationRef<'_>, InvalidationError> {
    let inv = flatbuffers::root::<Invalidation>(payload)?;
    Ok(InvalidationRef {
        resync: inv.resync(),
        keys: inv.keys(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_resync_round_trip() {
        let mut fbb = FlatBufferBuilder::new();
        let bytes = encode_invalidation(&mut fbb, &[b"a".as_slice(), b"bc"], false).to_vec();
        let inv = decode_invalidation(&bytes).unwrap();
        assert!(!inv.resync);
        assert_eq!(inv.keys().collect::<Vec<_>>(), [b"a".as_slice(), b"bc"]);
        let none: [&[u8]; 0] = [];
        let bytes = encode_invalidation(&mut fbb, &none, true).to_vec();
        let inv = decode_invalidation(&bytes).unwrap();
        assert!(inv.resync && inv.keys().next().is_none());
        assert!(decode_invalidation(b"x").is_err());
    }
}
