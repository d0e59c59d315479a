//! Two pipeline stages in one process: a "decoder" that emits several
//! records per request through its Emitter into a small ring (so it waits
//! for room), and a one-in-one-out stage that answers the server; errors
//! from the first stage reach the server directly.

mod support;

use std::time::Duration;

use citadel_plugin::{Options, Plugin, Reply};
use citadel_proto::ring::{Consumer, EventFd, Producer, Ring};
use citadel_proto::{Envelope, Kind, PluginEnd};
use support::read_all;

fn ring(cap: u64) -> (Ring, EventFd) {
    (
        Ring::create_memfd("stage-test", cap).unwrap(),
        EventFd::new().unwrap(),
    )
}

#[test]
fn frames_flow_stage_to_stage_with_backpressure_and_errors_skip_ahead() {
    let (a_req, a_req_efd) = ring(1 << 16);
    let (a_rep, a_rep_efd) = ring(1 << 16);
    // Small on purpose: 40 records of 200 bytes do not fit at once.
    let (b_req, b_req_efd) = ring(4096);
    let (b_rep, b_rep_efd) = ring(1 << 16);
    let a_end = PluginEnd {
        requests: Consumer::attach(a_req.clone(), a_req_efd.try_clone().unwrap()),
        replies: Producer::attach(a_rep.clone(), a_rep_efd.try_clone().unwrap()),
        outputs: vec![Producer::attach(
            b_req.clone(),
            b_req_efd.try_clone().unwrap(),
        )],
    };
    let b_ring = b_req.clone();
    let b_end = PluginEnd {
        requests: Consumer::attach(b_req, b_req_efd),
        replies: Producer::attach(b_rep.clone(), b_rep_efd.try_clone().unwrap()),
        outputs: Vec::new(),
    };
    let mut server_req = Producer::attach(a_req, a_req_efd);
    let mut from_a = Consumer::attach(a_rep, a_rep_efd);
    let mut from_b = Consumer::attach(b_rep, b_rep_efd);

    let a = Plugin::new(vec![a_end], Options::default()).unwrap();
    let b = Plugin::new(vec![b_end], Options::default()).unwrap();
    let (stop_a, stop_b) = (a.stopper(), b.stopper());
    let a = std::thread::spawn(move || {
        a.serve_stage(|req, out| {
            if req.payload == b"bad" {
                return Some(Reply::error(7, "undecodable input"));
            }
            for i in 0..40u8 {
                out.emit_with(200, |buf| {
                    buf.fill(i);
                    buf[..req.payload.len()].copy_from_slice(req.payload);
                })
                .unwrap();
            }
            None
        })
    });
    let b = std::thread::spawn(move || {
        b.serve(|req| {
            std::thread::sleep(Duration::from_micros(200));
            Reply::ok(req.payload[..3].to_vec())
        })
    });
    server_req.send(&Envelope::request(1), b"one").unwrap();
    server_req.send(&Envelope::request(2), b"bad").unwrap();
    server_req.send(&Envelope::request(3), b"two").unwrap();

    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while got_b.len() < 80 && std::time::Instant::now() < deadline {
        read_all(&mut from_a, &mut got_a);
        read_all(&mut from_b, &mut got_b);
        std::thread::sleep(Duration::from_millis(1));
    }
    read_all(&mut from_a, &mut got_a);
    stop_a.stop();
    stop_b.stop();
    a.join().unwrap().unwrap();
    b.join().unwrap().unwrap();

    assert_eq!(got_a.len(), 1, "only the error comes from the first stage");
    assert_eq!(
        (got_a[0].id, got_a[0].kind, got_a[0].status),
        (2, Kind::Error, 7)
    );
    assert_eq!(got_b.len(), 80, "40 records each for calls 1 and 3");
    assert!(got_b.iter().all(|g| g.kind == Kind::Reply));
    assert!(got_b[..40].iter().all(|g| g.id == 1 && g.payload == b"one"));
    assert!(got_b[40..].iter().all(|g| g.id == 3 && g.payload == b"two"));
    assert!(
        got_b.iter().all(|g| g.id != 2),
        "the next stage never saw call 2"
    );
    let (full, _) = server_req.ring().stalls();
    assert_eq!(full, 0, "the server's ring never filled");
    let (full, empty) = b_ring.stalls();
    assert!(
        full > 0,
        "the first stage waited for room in the next one's ring"
    );
    assert!(empty > 0, "the next stage parked waiting for input");
}
