//! Ring records under arbitrary memory and arbitrary operation sequences.
//!
//! The input's first byte picks a scenario:
//! * even: **hostile memory**: a ring whose header, cursors and data area
//!   hold input bytes (a misbehaving peer wrote them) is read by a consumer
//!   and written by a producer. Anything may be refused (`Corrupt`, `Full`,
//!   a failed attach); nothing may panic, hang or touch memory outside the
//!   data area (debug assertions check every access; ASan the rest).
//! * odd: **protocol**: input-driven sends, reads, commits and restarts of
//!   either side, checked against a model (every record comes back intact,
//!   in order, with its delivery count), with optional corruption of any
//!   region byte, after which only the first rule holds.
#![no_main]

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use citadel_proto::ring::layout::{region_len, DATA_OFFSET, OFF_COMMIT, OFF_HEAD};
use citadel_proto::ring::{Consumer, EventFd, Producer, ReserveError, Ring};
use citadel_proto::shm::ShmRegion;
use citadel_proto::Envelope;
use libfuzzer_sys::fuzz_target;

const CAPACITY: u64 = 4096;

/// One region for every run (a memfd per run would cost system calls).
fn region() -> &'static Arc<ShmRegion> {
    static REGION: OnceLock<Arc<ShmRegion>> = OnceLock::new();
    REGION.get_or_init(|| Arc::new(ShmRegion::create_memfd("fuzz", region_len(CAPACITY)).unwrap()))
}

/// Writes `bytes` at `offset` of the region (clipped to it).
fn poke(offset: usize, bytes: &[u8]) {
    let r = region();
    let end = (offset + bytes.len()).min(r.len());
    if offset >= end {
        return;
    }
    // SAFETY: [offset, end) is inside the mapping; no Producer, Consumer or
    // slice of ring memory is alive in this thread while we write, and no
    // other thread touches the region.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), r.as_ptr().add(offset), end - offset);
    }
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn byte(&mut self) -> Option<u8> {
        self.bytes(1).first().copied()
    }
    fn u16(&mut self) -> u16 {
        let b = self.bytes(2);
        b.iter().fold(0, |v, &x| (v << 8) | u16::from(x))
    }
    fn u64(&mut self) -> u64 {
        let b = self.bytes(8);
        b.iter().fold(0, |v, &x| (v << 8) | u64::from(x))
    }
}

fn fresh_ring() -> Ring {
    poke(0, &vec![0u8; region().len()]);
    Ring::init(Arc::clone(region()), CAPACITY).unwrap()
}

fn eventfd() -> EventFd {
    EventFd::new().unwrap()
}

/// Reads everything readable, checking what the consumer hands out.
fn drain(consumer: &mut Consumer, commit_every: u8) -> usize {
    let mut n = 0;
    for i in 0..256u32 {
        let end = match consumer.read() {
            Ok(Some(r)) => {
                assert_eq!(r.payload().len(), r.len());
                assert!(
                    r.len() + 32 <= CAPACITY as usize,
                    "a record inside the data area"
                );
                assert_eq!(r.copy_payload(), r.payload());
                let _ = r.envelope();
                r.mark_delivery();
                r.end()
            }
            Ok(None) | Err(_) => break,
        };
        n += 1;
        if commit_every != 0 && i % u32::from(commit_every) == 0 {
            let _ = consumer.commit_to(end);
        }
    }
    let _ = consumer.has_unread();
    n
}

fn hostile(mut input: Input<'_>) {
    let _ = fresh_ring();
    let header = input.byte().unwrap_or(0);
    if header & 1 != 0 {
        // Overwrite part of the header too (magic, version, capacity...).
        let at = input.byte().unwrap_or(0) as usize % DATA_OFFSET;
        let len = input.byte().unwrap_or(0) as usize % 64;
        let bytes = input.bytes(len).to_vec();
        poke(at, &bytes);
    }
    let commit = input.u64();
    let head = if header & 2 != 0 {
        input.u64()
    } else {
        commit.wrapping_add(u64::from(input.u16()) % (2 * CAPACITY))
    };
    poke(OFF_HEAD, &head.to_le_bytes());
    poke(OFF_COMMIT, &commit.to_le_bytes());
    let commit_every = input.byte().unwrap_or(0) % 4;
    let data = input.bytes(CAPACITY as usize).to_vec();
    poke(DATA_OFFSET, &data);
    let Ok(ring) = Ring::attach(Arc::clone(region())) else {
        return;
    };
    let mut consumer = Consumer::attach(ring.clone(), eventfd());
    drain(&mut consumer, commit_every);
    consumer.rewind();
    drain(&mut consumer, 1);
    let mut producer = Producer::attach(ring, eventfd());
    let _ = producer.in_flight();
    for _ in 0..MAX_OPS {
        let Some(len) = input.byte() else {
            break;
        };
        let len = usize::from(len) * 17;
        if let Ok(mut g) = producer.reserve(len) {
            g.payload_mut().fill(0xAB);
            let _ = g.commit(&Envelope::request(len as u64));
        }
    }
    drain(&mut consumer, 1);
}

/// A published, uncommitted record of the model.
struct Rec {
    id: u64,
    len: usize,
    deliveries: u16,
}

/// A record's payload: its id in the first 8 bytes (as far as they go),
/// then a fill byte that differs from record to record.
fn fill(id: u64, payload: &mut [u8]) {
    payload.fill(id.wrapping_mul(131) as u8);
    let stamp = id.to_le_bytes();
    let n = payload.len().min(8);
    payload[..n].copy_from_slice(&stamp[..n]);
}

fn is_payload_of(id: u64, payload: &[u8]) -> bool {
    let n = payload.len().min(8);
    payload[..n] == id.to_le_bytes()[..n]
        && payload[n..]
            .iter()
            .all(|b| *b == id.wrapping_mul(131) as u8)
}

/// Most operations one input drives (keeps executions fast).
const MAX_OPS: usize = 256;

fn protocol(mut input: Input<'_>) {
    let ring = fresh_ring();
    let mut producer = Producer::attach(ring.clone(), eventfd());
    let mut consumer = Consumer::attach(ring.clone(), eventfd());
    let mut queue: VecDeque<Rec> = VecDeque::new();
    // Ends of the records read since the last commit (the model's read cursor).
    let mut ends: Vec<u64> = Vec::new();
    let mut next_id = 0u64;
    let mut corrupted = false;
    for _ in 0..MAX_OPS {
        let Some(op) = input.byte() else {
            break;
        };
        match op % 8 {
            0..=2 => {
                let len = usize::from(input.u16()) % (ring.max_payload() + 64);
                match producer.reserve(len) {
                    Ok(mut g) => {
                        fill(next_id, g.payload_mut());
                        g.commit(&Envelope::request(next_id)).unwrap();
                        queue.push_back(Rec {
                            id: next_id,
                            len,
                            deliveries: 0,
                        });
                        next_id += 1;
                    }
                    Err(ReserveError::TooLarge { .. }) => assert!(len > ring.max_payload()),
                    Err(ReserveError::Full { .. }) => {}
                }
            }
            3 => {
                for _ in 0..=(input.byte().unwrap_or(0) % 8) {
                    let got = match consumer.read() {
                        Ok(Some(r)) => {
                            Some((r.envelope(), r.copy_payload(), r.mark_delivery(), r.end()))
                        }
                        Ok(None) => None,
                        Err(e) => {
                            assert!(corrupted, "clean ring reported {e}");
                            None
                        }
                    };
                    let Some((env, payload, attempt, end)) = got else {
                        if !corrupted {
                            assert_eq!(ends.len(), queue.len(), "records left unread");
                        }
                        break;
                    };
                    if corrupted {
                        continue;
                    }
                    let rec = &mut queue[ends.len()];
                    assert_eq!(env.id, rec.id);
                    assert_eq!(env.attempt, rec.deliveries);
                    assert_eq!(payload.len(), rec.len);
                    assert!(is_payload_of(rec.id, &payload));
                    rec.deliveries += 1;
                    assert_eq!(attempt, rec.deliveries);
                    ends.push(end);
                }
            }
            4 => {
                let pick = input.byte().unwrap_or(0) as usize;
                if ends.is_empty() || pick % 2 == 0 {
                    consumer.commit_read();
                    queue.drain(..ends.len().min(queue.len()));
                    ends.clear();
                } else {
                    let j = pick % ends.len();
                    let committed = consumer.commit_to(ends[j]);
                    assert!(corrupted || committed.is_ok());
                    queue.drain(..(j + 1).min(queue.len()));
                    ends.drain(..=j);
                }
            }
            5 => {
                consumer = Consumer::attach(ring.clone(), eventfd());
                ends.clear();
            }
            6 => producer = Producer::attach(ring.clone(), eventfd()),
            _ => {
                let at = usize::from(input.u16()) % region().len();
                let len = usize::from(input.byte().unwrap_or(0) % 16);
                let bytes = input.bytes(len).to_vec();
                poke(at, &bytes);
                corrupted = true;
            }
        }
    }
    drain(&mut consumer, 1);
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    match input.byte() {
        Some(b) if b % 2 == 0 => hostile(input),
        Some(_) => protocol(input),
        None => {}
    }
});
