//! loom models of the ring cursors, run against the production producer,
//! consumer and parking code (`--cfg loom` swaps in loom's atomics and a
//! tiny ring whose data words are loom-tracked cells; see
//! `src/ring/model.rs`). Run:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test -p citadel-proto --release --test loom_ring
//! ```
//!
//! (add `CARGO_TARGET_DIR=target/loom` to keep the normal build's artifacts).
//! The two-thread models are explored exhaustively (no preemption bound);
//! the three-thread `a_server_parked_on_many_rings_is_always_rung` took
//! ~280 s that way on 2 busy cores, so it is bounded to three preemptions
//! unless `LOOM_MAX_PREEMPTIONS` is set (an exhaustive run by hand:
//! `LOOM_MAX_PREEMPTIONS=100`).
//!
//! * `records_arrive_intact_and_in_order_across_the_wrap`: every record's
//!   bytes are written before head publishes them (Release/Acquire) and
//!   read before commit frees them for reuse (Release/Acquire): loom
//!   reports any access to record bytes not ordered after the last
//!   conflicting one; the padding record at the wrap is skipped.
//! * `a_parked_consumer_is_always_rung`: the sleeping-flag handshake
//!   (store-buffering with SeqCst fences): if the consumer decides to
//!   block, the producer saw the flag and rang the doorbell.
//! * `a_server_parked_on_many_rings_is_always_rung`: the server thread's
//!   shape of it (one park over every reply ring of its lanes, flags
//!   cleared while it runs turns): whenever it ends parked, every ring
//!   with an unread record rang its doorbell.
//! * `a_restarted_consumer_resumes_at_the_commit_cursor`: a consumer that
//!   dies after committing some of what it read is replaced by one that
//!   gets exactly the uncommitted records again, with the attempt count
//!   incremented, while the producer keeps publishing.
//! * `a_drained_gate_gets_no_record_after`: the gate of a stage's input
//!   ring (open call: `writing`, `closed`, the open-call table and
//!   `calls`; host: close, then drained?): once the host sees the ring
//!   drained, no record of any call arrives in it any more.
#![cfg(loom)]

use citadel_proto::ring::{
    clear_sleeping_all, prepare_park, prepare_park_all, Consumer, EventFd, OpenCall, Producer,
    ReserveError, Ring,
};
use citadel_proto::Envelope;
use loom::thread;

/// 128 data bytes: three 40-byte records fit, the fourth wraps (8 bytes of
/// padding first) and needs space the consumer committed.
const CAPACITY: u64 = 128;
const PAYLOAD: usize = 8;

fn pair() -> (Producer, Consumer, EventFd) {
    let ring = Ring::new_model(CAPACITY).unwrap();
    let bell = EventFd::new_model();
    let producer = Producer::attach(ring.clone(), bell.try_clone().unwrap());
    let consumer = Consumer::attach(ring, bell.try_clone().unwrap());
    (producer, consumer, bell)
}

fn payload(id: u64) -> [u8; PAYLOAD] {
    [id as u8 + 1; PAYLOAD]
}

/// Publishes records `ids`, yielding while the ring is full.
fn produce(producer: &mut Producer, ids: std::ops::Range<u64>) {
    for id in ids {
        loop {
            match producer.reserve(PAYLOAD) {
                Ok(mut grant) => {
                    grant.payload_mut().copy_from_slice(&payload(id));
                    grant.commit(&Envelope::request(id)).unwrap();
                    break;
                }
                Err(ReserveError::Full { .. }) => thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
    }
}

/// Reads the next record, yielding until there is one; returns its id,
/// attempt (after counting this delivery) and end.
fn next(consumer: &Consumer) -> (u64, u16, u64) {
    loop {
        if let Some(r) = consumer.read().unwrap() {
            assert_eq!(r.payload(), payload(r.envelope().id));
            assert_eq!(r.copy_payload(), payload(r.envelope().id));
            return (r.envelope().id, r.mark_delivery(), r.end());
        }
        thread::yield_now();
    }
}

#[test]
fn records_arrive_intact_and_in_order_across_the_wrap() {
    loom::model(|| {
        let (mut producer, mut consumer, _) = pair();
        let p = thread::spawn(move || produce(&mut producer, 0..4));
        for want in 0..4 {
            let (id, attempt, end) = next(&consumer);
            assert_eq!((id, attempt), (want, 1));
            consumer.commit_to(end).unwrap();
        }
        p.join().unwrap();
        assert!(consumer.read().unwrap().is_none());
    });
}

#[test]
fn a_parked_consumer_is_always_rung() {
    loom::model(|| {
        let (mut producer, consumer, bell) = pair();
        let p = thread::spawn(move || produce(&mut producer, 0..1));
        let parks = prepare_park(&[&consumer]);
        p.join().unwrap();
        if parks {
            assert!(bell.pending() > 0, "parked, and the producer did not ring");
        } else {
            assert!(consumer.has_unread(), "stayed awake without data");
        }
    });
}

#[test]
fn a_server_parked_on_many_rings_is_always_rung() {
    // Three threads: exhaustive exploration took ~280 s of CI; bounded to
    // three preemptions (loom's guidance: most concurrency bugs need two or
    // fewer) it takes seconds. LOOM_MAX_PREEMPTIONS in the environment
    // still overrides it, for an exhaustive run by hand.
    let mut model = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        model.preemption_bound = Some(3);
    }
    model.check(|| {
        let (mut p0, c0, b0) = pair();
        let (mut p1, c1, b1) = pair();
        let t0 = thread::spawn(move || produce(&mut p0, 0..1));
        let t1 = thread::spawn(move || produce(&mut p1, 1..2));
        let rings = [(&c0, &b0), (&c1, &b1)];
        let consumers = || rings.iter().map(|(c, _)| *c);
        let mut parked = false;
        // Two turns of the server loop: awake (flags down, read what is
        // there), then the park before blocking.
        for _turn in 0..2 {
            if parked {
                // Woken (by a bell or a deadline): drain the bells.
                for (_, b) in &rings {
                    b.drain().unwrap();
                }
            }
            clear_sleeping_all(consumers());
            for (c, _) in &rings {
                while let Some(r) = c.read().unwrap() {
                    assert_eq!(r.payload(), payload(r.envelope().id));
                }
            }
            parked = prepare_park_all(consumers());
        }
        t0.join().unwrap();
        t1.join().unwrap();
        if parked {
            for (c, b) in &rings {
                if c.has_unread() {
                    assert!(b.pending() > 0, "parked over an unread record, no ring");
                }
            }
        }
    });
}

#[test]
fn a_restarted_consumer_resumes_at_the_commit_cursor() {
    loom::model(|| {
        let (mut producer, mut consumer, bell) = pair();
        let ring = consumer.ring().clone();
        let p = thread::spawn(move || produce(&mut producer, 0..3));
        let (first, _, end) = next(&consumer);
        let (second, _, _) = next(&consumer);
        assert_eq!((first, second), (0, 1));
        consumer.commit_to(end).unwrap();
        drop(consumer); // dies with record 1 read but not committed
        let again = Consumer::attach(ring, bell);
        let redelivered = next(&again);
        assert_eq!(
            (redelivered.0, redelivered.1),
            (1, 2),
            "record 1, second delivery"
        );
        assert_eq!(next(&again).0, 2);
        p.join().unwrap();
    });
}

#[test]
fn a_drained_gate_gets_no_record_after() {
    loom::model(|| {
        let (mut producer, mut consumer, _) = pair();
        let ring = producer.ring().clone();
        let p = thread::spawn(move || {
            for id in 1..=2 {
                if producer.open_call(id) == OpenCall::Opened {
                    produce(&mut producer, id..id + 1);
                    producer.end_call(id);
                }
            }
        });
        ring.close();
        loop {
            while let Some(end) = consumer.read().unwrap().map(|r| r.end()) {
                consumer.commit_to(end).unwrap();
            }
            if ring.is_drained() {
                break;
            }
            thread::yield_now();
        }
        p.join().unwrap();
        assert!(
            consumer.read().unwrap().is_none(),
            "a record arrived after the drain"
        );
    });
}
