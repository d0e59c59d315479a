//! The plugin ring (citadel-proto) next to a Unix domain socket doing the
//! same work, between two threads, and a 1 MiB hand-off next to `memcpy`.
//!
//! * `roundtrip/*`: one 64-byte request and its 64-byte reply, one at a time
//!   (ring pair vs socketpair ping-pong). Time per round trip.
//! * `throughput/*`: a stream of 64-byte messages one way, one send per
//!   message (ring `send` vs one `write` per message); the receiver checks
//!   each message. Time per message.
//! * `handoff_1MiB/*`: the producer writes a 1 MiB payload straight into a
//!   reserved ring record and publishes it; the consumer thread checks it and
//!   commits. Baseline: `copy_from_slice` of 1 MiB in one thread.
//!
//! Both sides spin while busy (the ring parks on its eventfd only when idle).

use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use citadel_proto::ring::{Consumer, EventFd, Producer, Ring, SendError};
use citadel_proto::{Envelope, Kind, SpinPolicy};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SMALL: usize = 64;
const MIB: usize = 1 << 20;

/// A ring with its producer and consumer ends (the eventfd is shared).
fn ring(capacity: u64) -> (Producer, Consumer) {
    let ring = Ring::create_memfd("bench", capacity).unwrap();
    let efd = EventFd::new().unwrap();
    (
        Producer::attach(ring.clone(), efd.try_clone().unwrap()),
        Consumer::attach(ring, efd),
    )
}

/// Sends, spinning while the ring is full (the consumer commits quickly).
fn send_spin(p: &mut Producer, env: &Envelope, payload: &[u8]) {
    loop {
        match p.send(env, payload) {
            Ok(()) => return,
            Err(SendError::Reserve(_)) => std::hint::spin_loop(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// A consumer thread: calls `each(record payload, record envelope)` for every
/// record until a `Control` record arrives, committing after each batch.
fn consumer_thread(
    consumer: Consumer,
    mut each: impl FnMut(&[u8], Envelope) + Send + 'static,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut consumer = consumer;
        loop {
            while let Some(r) = consumer.read().unwrap() {
                let env = r.envelope();
                if env.kind == Kind::Control {
                    consumer.commit_read();
                    return;
                }
                each(r.payload(), env);
            }
            consumer.commit_read();
            consumer.wait(SpinPolicy::default(), None).unwrap();
        }
    })
}

fn stop(p: &mut Producer, t: JoinHandle<()>) {
    send_spin(p, &Envelope::request(0).with_kind(Kind::Control), b"");
    t.join().unwrap();
}

fn roundtrip(c: &mut Criterion) {
    let mut g = c.benchmark_group("roundtrip");
    g.throughput(Throughput::Elements(1));
    {
        let (mut req_p, req_c) = ring(1 << 16);
        let (mut rep_p, mut rep_c) = ring(1 << 16);
        let echo = consumer_thread(req_c, move |payload, env| {
            send_spin(&mut rep_p, &Envelope::reply(env.id), payload)
        });
        let msg = [7u8; SMALL];
        let mut id = 0;
        g.bench_function("ring_64B", |b| {
            b.iter(|| {
                id += 1;
                send_spin(&mut req_p, &Envelope::request(id), &msg);
                loop {
                    if let Some(r) = rep_c.read().unwrap() {
                        assert_eq!(r.envelope().id, id);
                        black_box(r.payload());
                        break;
                    }
                    std::hint::spin_loop();
                }
                rep_c.commit_read();
            })
        });
        stop(&mut req_p, echo);
    }
    {
        let (mut a, mut b_end) = UnixStream::pair().unwrap();
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; SMALL];
            while b_end.read_exact(&mut buf).is_ok() {
                b_end.write_all(&buf).unwrap();
            }
        });
        let mut buf = [7u8; SMALL];
        g.bench_function("unix_socket_64B", |b| {
            b.iter(|| {
                a.write_all(&buf).unwrap();
                a.read_exact(&mut buf).unwrap();
                black_box(&buf);
            })
        });
        drop(a);
        echo.join().unwrap();
    }
    g.finish();
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("throughput");
    g.throughput(Throughput::Elements(1));
    {
        let (mut p, cons) = ring(1 << 20);
        let seen = Arc::new(AtomicU64::new(0));
        let seen2 = Arc::clone(&seen);
        let t = consumer_thread(cons, move |payload, env| {
            assert_eq!(payload[0], env.id as u8);
            seen2.fetch_add(1, Ordering::Release);
        });
        let mut id = 0u64;
        g.bench_function("ring_64B", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let target = seen.load(Ordering::Acquire) + iters;
                let mut msg = [0u8; SMALL];
                for _ in 0..iters {
                    id += 1;
                    msg[0] = id as u8;
                    send_spin(&mut p, &Envelope::request(id), &msg);
                }
                while seen.load(Ordering::Acquire) < target {
                    std::hint::spin_loop();
                }
                start.elapsed()
            })
        });
        stop(&mut p, t);
    }
    {
        let (mut w, mut r) = UnixStream::pair().unwrap();
        let seen = Arc::new(AtomicU64::new(0));
        let seen2 = Arc::clone(&seen);
        let t = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut bytes = 0u64;
            let mut next = 0u8;
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    return;
                }
                // Check each message's first byte, as the ring's consumer does.
                for (i, b) in buf[..n].iter().enumerate() {
                    if (bytes + i as u64).is_multiple_of(SMALL as u64) {
                        next = next.wrapping_add(1);
                        assert_eq!(*b, next);
                    }
                }
                bytes += n as u64;
                seen2.store(bytes / SMALL as u64, Ordering::Release);
            }
        });
        let mut id = 0u8;
        g.bench_function("unix_socket_64B", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let target = seen.load(Ordering::Acquire) + iters;
                let mut msg = [0u8; SMALL];
                for _ in 0..iters {
                    id = id.wrapping_add(1);
                    msg[0] = id;
                    w.write_all(&msg).unwrap();
                }
                while seen.load(Ordering::Acquire) < target {
                    std::hint::spin_loop();
                }
                start.elapsed()
            })
        });
        drop(w);
        t.join().unwrap();
    }
    g.finish();
}

fn handoff(c: &mut Criterion) {
    let mut g = c.benchmark_group("handoff_1MiB");
    g.throughput(Throughput::Bytes(MIB as u64));
    let src: Vec<u8> = (0..MIB).map(|i| (i * 31) as u8).collect();
    {
        let (mut p, cons) = ring(8 << 20);
        let done = Arc::new(AtomicU64::new(0));
        let done2 = Arc::clone(&done);
        let t = consumer_thread(cons, move |payload, _| {
            assert_eq!(payload.len(), MIB);
            black_box((payload[0], payload[MIB / 2], payload[MIB - 1]));
            done2.fetch_add(1, Ordering::Release);
        });
        g.bench_function("ring", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let target = done.load(Ordering::Acquire) + iters;
                for i in 0..iters {
                    let mut grant = loop {
                        match p.reserve(MIB) {
                            Ok(g) => break g,
                            Err(_) => std::hint::spin_loop(),
                        }
                    };
                    grant.payload_mut().copy_from_slice(&src);
                    grant.commit(&Envelope::request(i)).unwrap();
                }
                while done.load(Ordering::Acquire) < target {
                    std::hint::spin_loop();
                }
                start.elapsed()
            })
        });
        stop(&mut p, t);
    }
    let mut dst = vec![0u8; MIB];
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = roundtrip, throughput, handoff }
criterion_main!(benches);
