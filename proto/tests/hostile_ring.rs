//! Rings whose shared memory a misbehaving peer wrote: each case is an
//! input `cargo fuzz run ring_records` found (or a neighbour of one),
//! replayed as a plain test. Nothing may panic or touch memory outside the
//! data area; refusing (`Corrupt`, `Full`) is fine.
#![cfg(not(loom))] // needs mapped rings; the loom models are in loom_ring.rs

use citadel_proto::ring::layout::{record_len, OFF_COMMIT, OFF_HEAD, PAD_MARKER};
use citadel_proto::ring::{Consumer, EventFd, Producer, ReadError, ReserveError, Ring};
use citadel_proto::Envelope;

const CAP: u64 = 4096;

fn ring() -> Ring {
    Ring::create_memfd("hostile", CAP).unwrap()
}

/// Writes `value` at `offset` of the ring's region, as another process could.
fn poke_u64(ring: &Ring, offset: usize, value: u64) {
    let r = ring.region();
    assert!(offset + 8 <= r.len());
    // SAFETY: in bounds (checked); no Producer or Consumer of this ring is
    // reading or writing the word concurrently in this test.
    unsafe { std::ptr::write_unaligned(r.as_ptr().add(offset).cast::<u64>(), value.to_le()) }
}

fn efd() -> EventFd {
    EventFd::new().unwrap()
}

/// fuzz crash-5e697f2c / crash-c583e943: a producer re-attached to a ring
/// whose head cursor a peer set to a misaligned position 3 bytes before the
/// end of the data area wrote its 4-byte padding marker past that end.
#[test]
fn a_producer_attached_at_a_misaligned_head_stays_inside_the_data_area() {
    let ring = ring();
    for head in [CAP - 3, CAP - 1, 2 * CAP - 5, 13] {
        poke_u64(&ring, OFF_HEAD, head);
        poke_u64(&ring, OFF_COMMIT, head - 5);
        let mut producer = Producer::attach(ring.clone(), efd());
        // Its first record starts at the next 8-byte boundary (padding at
        // the end of the data area if it does not fit there).
        let mut grant = producer.reserve(100).unwrap();
        grant.payload_mut().fill(7);
        grant.commit(&Envelope::request(1)).unwrap();
        // The consumer, at the old commit cursor, finds the gap corrupt.
        let consumer = Consumer::attach(ring.clone(), efd());
        assert!(matches!(
            consumer.read(),
            Err(ReadError::Corrupt { .. }) | Ok(Some(_))
        ));
    }
}

#[test]
fn a_head_cursor_outside_the_window_is_corrupt_not_a_panic_or_a_hang() {
    let ring = ring();
    // Far ahead of commit (the consumer would loop over padding for ages),
    // behind commit (u64 underflow), and behind it across 2^64.
    for (commit, head) in [(0, u64::MAX / 2), (5000, 8), (u64::MAX - 7, u64::MAX - 100)] {
        poke_u64(&ring, OFF_COMMIT, commit);
        poke_u64(&ring, OFF_HEAD, head);
        let consumer = Consumer::attach(ring.clone(), efd());
        assert!(consumer.has_unread());
        let err = consumer.read().unwrap_err();
        assert!(
            err.to_string()
                .contains("head cursor outside the ring window"),
            "{err}"
        );
    }
}

#[test]
fn record_lengths_and_padding_that_leave_the_data_area_are_corrupt() {
    let ring = ring();
    let data = citadel_proto::ring::layout::DATA_OFFSET;
    let cases = [
        // A record longer than what is published.
        (0u64, 64u64, 0usize, 100u32),
        // A record running past the end of the data area.
        (CAP - 64, CAP, CAP as usize - 64, 200),
        // Padding that claims more than is published.
        (CAP - 64, CAP - 32, CAP as usize - 64, PAD_MARKER),
    ];
    for (commit, head, at, len) in cases {
        poke_u64(&ring, OFF_COMMIT, commit);
        poke_u64(&ring, OFF_HEAD, head);
        poke_u64(&ring, data + at, u64::from(len));
        let consumer = Consumer::attach(ring.clone(), efd());
        assert!(
            matches!(consumer.read(), Err(ReadError::Corrupt { .. })),
            "{len} at {at}"
        );
    }
}

#[test]
fn a_commit_cursor_ahead_of_head_leaves_the_producer_no_space() {
    let ring = ring();
    let mut producer = Producer::attach(ring.clone(), efd());
    producer.send(&Envelope::request(1), b"x").unwrap();
    // The consumer claims to have committed more than was published.
    poke_u64(&ring, OFF_COMMIT, 1 << 20);
    assert_eq!(
        producer.in_flight(),
        CAP,
        "reloads the commit cursor: no space"
    );
    assert!(matches!(
        producer.reserve(8),
        Err(ReserveError::Full { free: 0, .. })
    ));
    // Back within the window: space again.
    poke_u64(&ring, OFF_COMMIT, record_len(1) as u64);
    assert!(producer.reserve(8).is_ok());
}
