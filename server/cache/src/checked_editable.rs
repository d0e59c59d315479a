//! Editable values that check themselves, for the tests and the torture
//! writer of in-place edits (`Changes::edit`): they follow the protocol a
//! list root's ends use, so a torn edit, a torn read or an edit stored out
//! of order is detectable after the fact.
//!
//! ```text
//! guard: fnv1a(key):u64 | 0:u64
//! region: selector:u64 | descriptor x 2 | payload (PAYLOAD bytes)
//! descriptor: round:u64 | front:u32 | 0:u32 | sum:u64 | !round:u64
//! trailer: region start:u32 | region end:u32
//! ```
//! The selected descriptor names the payload bytes `front..PAYLOAD` and
//! their sum (FNV-1a over the key, then those bytes). An edit writes new
//! bytes below the front (a push: bytes no descriptor in use names) or
//! moves the front up (a pop), then the unused descriptor, then the
//! selector's low byte: the stored state is the old one until that
//! byte's store, the new one after it.

use crate::edit::EDIT_TRAILER;

const GUARD: usize = 16;
const SELECTOR: usize = GUARD;
const DESCRIPTOR: usize = 32;
/// Payload bytes after the descriptors.
pub const PAYLOAD: usize = 256;
const PAYLOAD_AT: usize = SELECTOR + 8 + 2 * DESCRIPTOR;
const REGION_END: usize = PAYLOAD_AT + PAYLOAD;
/// Length of every editable checked value.
pub const LEN: usize = REGION_END + EDIT_TRAILER;

fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn key_sum(key: &[u8]) -> u64 {
    fnv1a(0xcbf2_9ce4_8422_2325, key)
}

fn word(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn descriptor(round: u64, front: usize, sum: u64) -> [u8; DESCRIPTOR] {
    let mut d = [0u8; DESCRIPTOR];
    d[..8].copy_from_slice(&round.to_le_bytes());
    d[8..12].copy_from_slice(&(front as u32).to_le_bytes());
    d[16..24].copy_from_slice(&sum.to_le_bytes());
    d[24..].copy_from_slice(&(!round).to_le_bytes());
    d
}

/// A descriptor's (round, front, sum), None when torn (its two round
/// copies differ) or out of range.
fn read_descriptor(value: &[u8], slot: usize) -> Option<(u64, usize, u64)> {
    let at = SELECTOR + 8 + slot * DESCRIPTOR;
    let (round, check) = (word(value, at)?, word(value, at + 24)?);
    let front = (word(value, at + 8)? & 0xffff_ffff) as usize;
    (check == !round && front <= PAYLOAD).then_some((round, front, word(value, at + 16)?))
}

/// A new value for `key`: an empty payload, round 0, descriptor 0.
pub fn make(key: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; LEN];
    v[..8].copy_from_slice(&key_sum(key).to_le_bytes());
    let at = SELECTOR + 8;
    v[at..at + DESCRIPTOR].copy_from_slice(&descriptor(0, PAYLOAD, key_sum(key)));
    v[at + DESCRIPTOR..at + 2 * DESCRIPTOR].copy_from_slice(&descriptor(u64::MAX, PAYLOAD, 0));
    v[REGION_END..REGION_END + 4].copy_from_slice(&(SELECTOR as u32).to_le_bytes());
    v[REGION_END + 4..].copy_from_slice(&(REGION_END as u32).to_le_bytes());
    v
}

/// The selected descriptor's round when `value` is an editable value of
/// `key` whose selected descriptor is whole and matches its payload (what
/// a kill -9 must leave: the unused descriptor may be half written); None
/// otherwise.
pub fn verify(key: &[u8], value: &[u8]) -> Option<u64> {
    if value.len() != LEN || word(value, 0)? != key_sum(key) {
        return None;
    }
    let selected = word(value, SELECTOR)?;
    if selected > 1 {
        return None;
    }
    let (round, front, sum) = read_descriptor(value, selected as usize)?;
    let payload = &value[PAYLOAD_AT + front..REGION_END];
    (fnv1a(key_sum(key), payload) == sum).then_some(round)
}

/// [`verify`] with the unused descriptor whole too: what a validated read
/// must see (no edit is ever half stored to it).
pub fn verify_whole(key: &[u8], value: &[u8]) -> Option<u64> {
    let round = verify(key, value)?;
    let unused = 1 - word(value, SELECTOR)? as usize;
    read_descriptor(value, unused).map(|_| round)
}

/// The writes (offset in the value, bytes) of the next edit of `value`, a
/// value of `key`, chosen by `x`: a push of 1 to 16 bytes below the front,
/// or a pop of up to 16; the last write is the selector. None when `value`
/// does not verify (a torn copy: the update retries).
pub fn next_edit(key: &[u8], value: &[u8], x: u64) -> Option<Vec<(usize, Vec<u8>)>> {
    verify_whole(key, value)?;
    let selected = word(value, SELECTOR)? as usize;
    let (round, front, _) = read_descriptor(value, selected)?;
    let n = 1 + (x % 16) as usize;
    let mut writes = Vec::with_capacity(3);
    let new_front = if !(x >> 8).is_multiple_of(3) && front >= n {
        let bytes: Vec<u8> = (0..n)
            .map(|i| (x >> (16 + i % 6 * 8)) as u8 ^ i as u8)
            .collect();
        writes.push((PAYLOAD_AT + front - n, bytes));
        front - n
    } else {
        (front + n).min(PAYLOAD)
    };
    let mut payload = value[PAYLOAD_AT + new_front..REGION_END].to_vec();
    if let Some((_, bytes)) = writes.first() {
        payload[..n].copy_from_slice(bytes);
    }
    let sum = fnv1a(key_sum(key), &payload);
    let unused = 1 - selected;
    let at = SELECTOR + 8 + unused * DESCRIPTOR;
    writes.push((at, descriptor(round + 1, new_front, sum).to_vec()));
    // One byte: stored by one word store wherever it lies, so a kill -9
    // leaves the old selector or the new one (a wider one could straddle
    // two words).
    writes.push((SELECTOR, vec![unused as u8]));
    Some(writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(value: &mut [u8], writes: &[(usize, Vec<u8>)]) {
        for (at, bytes) in writes {
            value[*at..*at + bytes.len()].copy_from_slice(bytes);
        }
    }

    #[test]
    fn every_prefix_of_an_edit_verifies_as_old_or_new() {
        let key = b"edit:1";
        let mut value = make(key);
        assert_eq!(verify(key, &value), Some(0));
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for round in 1..2000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let writes = next_edit(key, &value, x).expect("a whole value");
            for stored in 0..writes.len() {
                let mut partial = value.clone();
                apply(&mut partial, &writes[..stored]);
                assert_eq!(verify_whole(key, &partial), Some(round - 1));
            }
            apply(&mut value, &writes);
            assert_eq!(verify_whole(key, &value), Some(round));
        }
        // A half-stored descriptor: the unused one may be, the selected never.
        let unused = 1 - word(&value, SELECTOR).unwrap() as usize;
        value[SELECTOR + 8 + unused * DESCRIPTOR] ^= 1;
        assert!(verify(key, &value).is_some() && verify_whole(key, &value).is_none());
        let (_, front, _) = read_descriptor(&value, 1 - unused).unwrap();
        if front < PAYLOAD {
            value[PAYLOAD_AT + front] ^= 1;
            assert_eq!(verify(key, &value), None);
        }
    }
}
