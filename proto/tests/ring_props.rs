//! Property tests of one ring against a model: random record sizes, wrap
//! around, full rings, reads, commits and consumer restarts.
#![cfg(not(loom))] // needs mapped rings; the loom models are in loom_ring.rs

use std::collections::VecDeque;

use citadel_proto::ring::layout::record_len;
use citadel_proto::ring::{Consumer, EventFd, Producer, ReserveError, Ring};
use citadel_proto::Envelope;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Send(usize),
    Read(usize),
    CommitRead,
    /// The consumer dies and a new one attaches (uncommitted records come back).
    Restart,
}

fn op(max_payload: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..max_payload).prop_map(Op::Send),
        1 => (0..max_payload / 8).prop_map(Op::Send),
        3 => (1..8usize).prop_map(Op::Read),
        2 => Just(Op::CommitRead),
        1 => Just(Op::Restart),
    ]
}

fn byte(id: u64, i: usize) -> u8 {
    (id as usize).wrapping_mul(31).wrapping_add(i) as u8
}

fn pair(capacity: u64) -> (Producer, Consumer) {
    let ring = Ring::create_memfd("prop", capacity).unwrap();
    let efd = EventFd::new().unwrap();
    (
        Producer::attach(ring.clone(), efd.try_clone().unwrap()),
        Consumer::attach(ring, efd),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ring_matches_model(ops in prop::collection::vec(op(3000), 1..400)) {
        const CAP: u64 = 8192;
        let (mut producer, mut consumer) = pair(CAP);
        // Model: published records not yet committed, as (id, len); `read`
        // of them have been read since the last commit or restart.
        let mut queue: VecDeque<(u64, usize)> = VecDeque::new();
        let mut read = 0usize;
        let mut in_flight: u64 = 0; // bytes, lower bound (records only, no padding)
        let mut next_id = 0u64;
        for op in ops {
            match op {
                Op::Send(len) => {
                    let rec = record_len(len) as u64;
                    let res = producer.reserve(len);
                    match res {
                        Ok(mut g) => {
                            prop_assert!(in_flight + rec <= CAP, "accepted more than fits");
                            for (i, b) in g.payload_mut().iter_mut().enumerate() {
                                *b = byte(next_id, i);
                            }
                            g.commit(&Envelope::request(next_id)).unwrap();
                            queue.push_back((next_id, len));
                            in_flight += rec;
                            next_id += 1;
                        }
                        Err(ReserveError::Full { .. }) => {
                            // At most one padding run is in flight (the window
                            // spans at most one wrap), shorter than the record
                            // that caused it; the new record may pad < rec.
                            let pad_bound = queue.iter().map(|(_, l)| record_len(*l) as u64).max().unwrap_or(0);
                            prop_assert!(
                                in_flight + pad_bound + 2 * rec > CAP,
                                "refused although {in_flight}+{pad_bound}+2*{rec} fits"
                            );
                        }
                        Err(e) => prop_assert!(false, "unexpected {e}"),
                    }
                }
                Op::Read(n) => {
                    for _ in 0..n {
                        let rec = consumer.read().unwrap();
                        match (rec, queue.get(read)) {
                            (None, None) => break,
                            (Some(r), Some(&(id, len))) => {
                                let env = r.envelope();
                                prop_assert_eq!(env.id, id);
                                prop_assert_eq!(r.payload().len(), len);
                                prop_assert!(r.payload().iter().enumerate().all(|(i, b)| *b == byte(id, i)));
                                read += 1;
                            }
                            (r, m) => prop_assert!(false, "ring {:?} vs model {:?}", r.map(|r| r.envelope()), m),
                        }
                    }
                }
                Op::CommitRead => {
                    consumer.commit_read();
                    for (_, len) in queue.drain(..read) {
                        in_flight -= record_len(len) as u64;
                    }
                    read = 0;
                    if queue.is_empty() {
                        prop_assert_eq!(producer.in_flight(), 0);
                    }
                }
                Op::Restart => {
                    let ring = consumer.ring().clone();
                    drop(consumer);
                    consumer = Consumer::attach(ring, EventFd::new().unwrap());
                    read = 0;
                }
            }
        }
        // Whatever is left is still delivered, in order, after a restart.
        let ring = consumer.ring().clone();
        drop(consumer);
        let consumer = Consumer::attach(ring, EventFd::new().unwrap());
        for &(id, _) in &queue {
            prop_assert_eq!(consumer.read().unwrap().map(|r| r.envelope().id), Some(id));
        }
        prop_assert!(consumer.read().unwrap().is_none());
    }

    #[test]
    fn empty_ring_takes_a_maximal_record_at_any_position(skip in 0usize..1024) {
        let (mut producer, mut consumer) = pair(4096);
        // Move the cursors to an arbitrary 8-aligned position.
        let len = skip * 8 % 1500;
        producer.send(&Envelope::request(0), &vec![7; len]).unwrap();
        consumer.read().unwrap().unwrap();
        consumer.commit_read();
        let max = producer.ring().max_payload();
        producer.send(&Envelope::request(1), &vec![9; max]).unwrap();
        let r = consumer.read().unwrap().unwrap();
        prop_assert_eq!(r.payload().len(), max);
        prop_assert!(r.payload().iter().all(|b| *b == 9));
    }
}

#[test]
fn full_ring_reports_full_at_once_and_too_large_is_typed() {
    let (mut producer, mut consumer) = pair(4096);
    let max = producer.ring().max_payload();
    assert_eq!(
        producer.reserve(max + 1).unwrap_err(),
        ReserveError::TooLarge { len: max + 1, max }
    );
    let mut sent = 0;
    while producer.send(&Envelope::request(sent), &[1; 100]).is_ok() {
        sent += 1;
    }
    assert_eq!(sent, 4096 / record_len(100) as u64);
    assert!(matches!(
        producer.reserve(100),
        Err(ReserveError::Full { .. })
    ));
    // Reading alone frees nothing: space is freed by commits only.
    while consumer.read().unwrap().is_some() {}
    assert!(matches!(
        producer.reserve(100),
        Err(ReserveError::Full { .. })
    ));
    consumer.commit_read();
    producer.send(&Envelope::request(sent), &[1; 100]).unwrap();
}

#[test]
fn truncated_grant_publishes_only_what_was_written() {
    let (mut producer, consumer) = pair(4096);
    let mut g = producer.reserve(1000).unwrap();
    g.payload_mut()[..5].copy_from_slice(b"hello");
    g.truncate(5);
    g.commit(&Envelope::reply(42)).unwrap();
    producer.reserve(10).unwrap().payload_mut().fill(1); // never committed: never seen
    let r = consumer.read().unwrap().unwrap();
    assert_eq!(r.payload(), b"hello");
    assert_eq!(r.envelope().id, 42);
    assert!(consumer.read().unwrap().is_none());
}

#[test]
fn attempts_are_counted_in_ring_memory_across_restarts() {
    let (mut producer, consumer) = pair(4096);
    producer.send(&Envelope::request(5), b"x").unwrap();
    let ring = consumer.ring().clone();
    assert_eq!(consumer.read().unwrap().unwrap().mark_delivery(), 1);
    drop(consumer);
    let mut consumer = Consumer::attach(ring, EventFd::new().unwrap());
    let r = consumer.read().unwrap().unwrap();
    assert_eq!(r.envelope().attempt, 1);
    assert_eq!(r.mark_delivery(), 2);
    let end = r.end();
    consumer.commit_to(end).unwrap();
    assert!(consumer.commit_to(end + 8).is_err());
}

#[test]
fn the_producer_sees_which_records_no_consumer_took() {
    let (mut producer, mut consumer) = pair(4096);
    let mut at = Vec::new();
    for id in 1..=3 {
        let mut g = producer.reserve(8).unwrap();
        g.payload_mut().fill(id as u8);
        at.push(g.position());
        g.commit(&Envelope::request(id)).unwrap();
    }
    assert!(at.iter().all(|&pos| producer.undelivered(pos)));
    // The consumer takes the first (a handler now holds it) ...
    let first = consumer.read().unwrap().unwrap();
    first.mark_delivery();
    let end = first.end();
    assert!(!producer.undelivered(at[0]));
    assert!(producer.undelivered(at[1]) && producer.undelivered(at[2]));
    // ... and once it is committed its bytes are no longer the record's.
    consumer.commit_to(end).unwrap();
    assert!(!producer.undelivered(at[0]));
    assert!(!producer.undelivered(at[2] + 4096), "not published");
}

#[test]
fn the_producer_takes_back_only_records_no_consumer_took() {
    use citadel_proto::ring::producer::WITHDRAWN;
    let (mut producer, consumer) = pair(4096);
    let mut at = Vec::new();
    for id in 1..=2 {
        let mut g = producer.reserve(3).unwrap();
        g.payload_mut().copy_from_slice(b"abc");
        at.push(g.position());
        g.commit(&Envelope::request(id)).unwrap();
    }
    let first = consumer.read().unwrap().unwrap();
    first.mark_delivery();
    assert!(producer.withdraw(at[0]).is_none(), "a handler holds it");
    let (env, payload) = producer.withdraw(at[1]).unwrap();
    assert_eq!(
        (env.id, env.attempt, payload.as_slice()),
        (2, 0, &b"abc"[..])
    );
    assert!(producer.withdraw(at[1]).is_none(), "taken back once");
    // A consumer that meets it later counts a delivery past any limit.
    let second = consumer.read().unwrap().unwrap();
    assert_eq!(second.mark_delivery(), WITHDRAWN + 1);
}

#[test]
fn attach_rejects_foreign_memory() {
    use citadel_proto::ring::LayoutError;
    use citadel_proto::shm::ShmRegion;
    let region = std::sync::Arc::new(ShmRegion::create_memfd("junk", 8192).unwrap());
    assert!(matches!(
        Ring::attach(region.clone()),
        Err(LayoutError::BadMagic(0))
    ));
    assert!(matches!(
        Ring::init(region, 8192),
        Err(LayoutError::Geometry { .. })
    ));
    assert!(matches!(
        Ring::create_memfd("x", 5000),
        Err(LayoutError::BadCapacity(5000))
    ));
}
