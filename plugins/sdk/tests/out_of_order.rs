//! The out-of-order mode in process: answers from other threads in any
//! order, commit in order, deadlines and poison before the handler, a full
//! reply ring, dropped responders, invalidations, and a stop that finishes
//! what is in hand.

mod support;

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use citadel_plugin::{Options, Reply, Responder};
use citadel_proto::envelope::{unix_ms, STATUS_DEADLINE, STATUS_HANDLER_FAILED, STATUS_POISON};
use citadel_proto::load::decode_invalidation;
use citadel_proto::ring::layout::record_len;
use citadel_proto::{Envelope, Format, Kind};
use support::Rig;

const WAIT: Duration = Duration::from_secs(10);

/// A plugin whose handler sends each (payload, responder) to the test.
fn held(options: Options) -> (Rig, mpsc::Receiver<(Vec<u8>, Responder)>) {
    let (tx, rx) = mpsc::channel();
    let (rig, _) = Rig::start(1 << 16, options, move |p| {
        p.serve_out_of_order(move |req, responder| {
            tx.send((req.payload.to_vec(), responder)).unwrap();
        })
    });
    (rig, rx)
}

fn recv(rx: &mpsc::Receiver<(Vec<u8>, Responder)>) -> (Vec<u8>, Responder) {
    rx.recv_timeout(WAIT).expect("the handler got a request")
}

#[test]
fn answers_publish_as_they_come_and_commit_waits_for_the_oldest() {
    let (mut rig, rx) = held(Options::default());
    for id in 0..4u64 {
        rig.send(Envelope::request(id), format!("p{id}").as_bytes());
    }
    let held: Vec<_> = (0..4).map(|_| recv(&rx)).collect();
    let mut held = held.into_iter();
    let first = held.next().unwrap();
    // Answer 3, 2, 1 from other threads; 0 stays unanswered.
    let threads: Vec<_> = held
        .rev()
        .map(|(p, r)| std::thread::spawn(move || r.reply(Reply::ok(p.to_ascii_uppercase()))))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(rig.pump(WAIT, |g| g.len() == 3));
    let mut ids: Vec<u64> = rig.got.iter().map(|g| g.id).collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3]);
    assert!(rig
        .got
        .iter()
        .all(|g| g.payload == format!("P{}", g.id).into_bytes()));
    std::thread::sleep(Duration::from_millis(50));
    let rec = record_len(2) as u64;
    assert_eq!(
        rig.uncommitted(),
        4 * rec,
        "nothing commits before request 0"
    );
    first.1.reply("zero");
    assert!(rig.pump(WAIT, |g| g.len() == 4));
    rig.wait_uncommitted(0);
    assert_eq!(rig.got[3].payload, b"zero");
    assert!(rig.stop().is_ok());
}

#[test]
fn expired_and_poison_requests_are_answered_without_the_handler() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&calls);
    let (mut rig, _) = Rig::start(1 << 16, Options::default(), move |p| {
        p.serve_out_of_order(move |req, responder| {
            seen.lock().unwrap().push(req.id);
            responder.reply(Reply::ok("handled"));
        })
    });
    let late = Envelope {
        deadline_ms: unix_ms() - 1000,
        ..Envelope::request(1)
    };
    let poison = Envelope {
        attempt: 3, // delivered 3 times already: this is the 4th
        ..Envelope::request(2)
    };
    let fine = Envelope {
        deadline_ms: unix_ms() + 60_000,
        ..Envelope::request(3)
    };
    rig.send(late, b"x");
    rig.send(poison, b"x");
    rig.send(fine, b"x");
    assert!(rig.pump(WAIT, |g| g.len() == 3));
    let by = rig.by_id();
    assert_eq!(
        (by[&1][0].kind, by[&1][0].status),
        (Kind::Error, STATUS_DEADLINE)
    );
    assert_eq!(
        (by[&2][0].kind, by[&2][0].status, by[&2][0].attempt),
        (Kind::Abandoned, STATUS_POISON, 4)
    );
    assert_eq!(
        (by[&3][0].kind, &by[&3][0].payload[..]),
        (Kind::Reply, &b"handled"[..])
    );
    assert_eq!(*calls.lock().unwrap(), [3]);
}

#[test]
fn a_full_reply_ring_holds_replies_back_and_drops_none() {
    const N: u64 = 200;
    let (mut rig, _) = Rig::start(4096, Options::default(), |p| {
        p.serve_out_of_order(|req, responder| {
            let body = vec![b'a' + (req.id % 26) as u8; 500];
            std::thread::spawn(move || responder.reply(Reply::ok(body)));
        })
    });
    for id in 0..N {
        rig.send(Envelope::request(id), b"q");
    }
    // The server reads nothing for a while: 4 KiB hold 7 replies.
    std::thread::sleep(Duration::from_millis(200));
    assert!(rig.pump(WAIT, |g| g.len() as u64 == N));
    let by = rig.by_id();
    for id in 0..N {
        assert_eq!(by[&id].len(), 1, "request {id} answered once");
        assert_eq!(by[&id][0].payload, vec![b'a' + (id % 26) as u8; 500]);
    }
}

#[test]
fn a_dropped_responder_fails_its_request_and_a_panic_too() {
    let (mut rig, _) = Rig::start(1 << 16, Options::default(), |p| {
        p.serve_out_of_order(|req, responder| match req.payload {
            b"drop" => drop(responder),
            b"panic" => panic!("handler bug"),
            _ => responder.reply("ok"),
        })
    });
    for (id, p) in [&b"drop"[..], b"panic", b"fine"].iter().enumerate() {
        rig.send(Envelope::request(id as u64), p);
    }
    assert!(rig.pump(WAIT, |g| g.len() == 3));
    let by = rig.by_id();
    for id in [0, 1] {
        assert_eq!(
            (by[&id][0].kind, by[&id][0].status),
            (Kind::Error, STATUS_HANDLER_FAILED)
        );
    }
    assert_eq!(by[&2][0].payload, b"ok");
    rig.wait_uncommitted(0);
}

#[test]
fn invalidations_that_arrive_together_share_a_record() {
    let (mut rig, notifier) = Rig::start(1 << 16, Options::default(), |p| {
        p.serve_out_of_order(|_, r| r.reply(""))
    });
    // Sent before the loop can look: batched into one record.
    for key in ["a", "bc", "d"] {
        notifier.invalidate(key);
    }
    notifier.resync();
    notifier.push(Kind::Control, Format::Raw, b"custom".to_vec());
    assert!(rig.pump(WAIT, |g| g.iter().any(|r| r.kind == Kind::Control)));
    let mut keys = Vec::new();
    let mut resyncs = 0;
    for g in &rig.got[..rig.got.len() - 1] {
        assert_eq!(
            (g.id, g.kind, g.format),
            (0, Kind::Invalidation, Format::FlatBuffer)
        );
        let inv = decode_invalidation(&g.payload).unwrap();
        resyncs += usize::from(inv.resync);
        keys.extend(inv.keys().map(<[u8]>::to_vec));
    }
    assert_eq!(keys, [b"a".to_vec(), b"bc".to_vec(), b"d".to_vec()]);
    assert_eq!(resyncs, 1);
    let last = rig.got.last().unwrap();
    assert_eq!(
        (last.kind, &last.payload[..]),
        (Kind::Control, &b"custom"[..])
    );
}

#[test]
fn stop_finishes_the_requests_in_hand_and_leaves_the_rest_in_the_ring() {
    let options = Options {
        max_in_flight: 4,
        ..Options::default()
    };
    let (mut rig, rx) = held(options);
    for id in 0..10u64 {
        rig.send(Envelope::request(id), b"p");
    }
    let in_hand: Vec<_> = (0..4).map(|_| recv(&rx)).collect();
    std::thread::sleep(Duration::from_millis(50));
    assert!(rx.try_recv().is_err(), "at most 4 requests in flight");
    rig.stopper.stop();
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !rig.plugin.as_ref().unwrap().is_finished(),
        "waits for its answers"
    );
    for (_, r) in in_hand {
        r.reply("late");
    }
    assert!(rig.plugin.take().unwrap().join().unwrap().is_ok());
    assert!(rig.pump(WAIT, |g| g.len() == 4));
    assert!(rig.got.iter().all(|g| g.payload == b"late"));
    assert_eq!(
        rig.uncommitted(),
        6 * record_len(1) as u64,
        "6 left for the next run"
    );
}
