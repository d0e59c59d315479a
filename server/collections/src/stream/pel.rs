//! A page of a consumer group's pending entries list, in ID order:
//!
//! ```text
//! count:u32 | (ms:u64 | seq:u64 | delivery time:u64 | deliveries:u64 | consumer:u32) x count
//! ```
//!
//! Fixed-size records, little endian; the consumer is its number in the
//! group (`group.rs`).

use super::StreamId;
use crate::packed::Corrupt;

/// Most entries a PEL page holds: an acknowledgement rewrites at most
/// `PEL_PAGE_MAX * 36` bytes.
pub const PEL_PAGE_MAX: usize = 128;

const RECORD: usize = 36;

/// One pending entry (Redis's NACK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub id: StreamId,
    /// Unix ms of the last delivery.
    pub delivery_time: u64,
    pub delivery_count: u64,
    pub consumer: u32,
}

/// The entries of a PEL page.
pub fn entries(page: &[u8]) -> Result<Vec<Pending>, Corrupt> {
    let count = u32::from_le_bytes(page.get(..4).ok_or(Corrupt)?.try_into().expect("4")) as usize;
    let body = &page[4..];
    if count.checked_mul(RECORD) != Some(body.len()) {
        return Err(Corrupt);
    }
    let word = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
    let out: Vec<Pending> = body
        .chunks_exact(RECORD)
        .map(|b| Pending {
            id: StreamId::new(word(b, 0), word(b, 8)),
            delivery_time: word(b, 16),
            delivery_count: word(b, 24),
            consumer: u32::from_le_bytes(b[32..36].try_into().expect("4")),
        })
        .collect();
    if out.windows(2).any(|w| w[0].id >= w[1].id) {
        return Err(Corrupt);
    }
    Ok(out)
}

/// A PEL page holding `list` (in ID order).
pub fn encode(list: &[Pending]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + list.len() * RECORD);
    out.extend_from_slice(&(list.len() as u32).to_le_bytes());
    for p in list {
        out.extend_from_slice(&p.id.to_bytes());
        out.extend_from_slice(&p.delivery_time.to_le_bytes());
        out.extend_from_slice(&p.delivery_count.to_le_bytes());
        out.extend_from_slice(&p.consumer.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pel_pages_round_trip_and_reject_corruption() {
        let list = vec![
            Pending {
                id: StreamId::new(1, 0),
                delivery_time: 5,
                delivery_count: 1,
                consumer: 0,
            },
            Pending {
                id: StreamId::new(1, 1),
                delivery_time: 6,
                delivery_count: 2,
                consumer: 3,
            },
        ];
        let page = encode(&list);
        assert_eq!(entries(&page).unwrap(), list);
        for cut in 0..page.len() {
            assert!(entries(&page[..cut]).is_err());
        }
        let swapped = encode(&[list[1], list[0]]);
        assert!(entries(&swapped).is_err());
    }
}
