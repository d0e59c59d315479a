//! Multi-threaded stress of the ring's ordering and wake-up protocol: a
//! consumer that parks at once whenever it runs dry must never miss a record
//! (a lost wake-up shows as a wait that times out) and must see every record
//! complete and in order.
#![cfg(not(loom))] // needs mapped rings; the loom models are in loom_ring.rs

use std::time::Duration;

use citadel_proto::ring::{Consumer, EventFd, Producer, ReserveError, Ring};
use citadel_proto::{Envelope, SpinPolicy, Wakeup};

const RECORDS: u64 = 100_000;

fn fill(id: u64, buf: &mut [u8]) -> usize {
    let len = (id % 61) as usize * 3;
    buf[..len].fill(id as u8);
    len
}

#[test]
fn parking_consumer_never_misses_a_wake_up() {
    let ring = Ring::create_memfd("stress", 1 << 12).unwrap();
    let efd = EventFd::new().unwrap();
    let mut producer = Producer::attach(ring.clone(), efd.try_clone().unwrap());
    let mut consumer = Consumer::attach(ring, efd);
    let reader = std::thread::spawn(move || {
        let (mut next, mut parks) = (0u64, 0u64);
        let mut buf = [0u8; 256];
        while next < RECORDS {
            while let Some(r) = consumer.read().unwrap() {
                assert_eq!(r.envelope().id, next);
                let len = fill(next, &mut buf);
                assert_eq!(r.payload(), &buf[..len], "record {next} torn");
                next += 1;
            }
            consumer.commit_read();
            if next < RECORDS {
                let woke = consumer
                    .wait(SpinPolicy::PARK_AT_ONCE, Some(Duration::from_secs(10)))
                    .unwrap();
                assert_eq!(woke, Wakeup::Data, "lost wake-up after record {next}");
                parks += 1;
            }
        }
        parks
    });
    let mut buf = [0u8; 256];
    for id in 0..RECORDS {
        let len = fill(id, &mut buf);
        loop {
            match producer.send(&Envelope::request(id), &buf[..len]) {
                Ok(()) => break,
                Err(citadel_proto::ring::SendError::Reserve(ReserveError::Full { .. })) => {
                    std::thread::yield_now()
                }
                Err(e) => panic!("{e}"),
            }
        }
        if id % 7 == 0 {
            std::thread::yield_now(); // let the consumer run dry and park
        }
    }
    let parks = reader.join().unwrap();
    assert!(
        parks > 100,
        "the consumer parked only {parks} times: the park path was not exercised"
    );
}
