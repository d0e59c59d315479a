//! kill -9 of a plugin in the out-of-order mode: a harness plays the
//! server, the plugin (this test binary, `plugin_child`) answers from a
//! worker thread in reverse order; the restarted plugin gets every request
//! that was not committed, and nothing committed comes back.

mod support;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use citadel_plugin::{Kind, Reply, Responder};
use citadel_proto::ring::layout::record_len;
use citadel_proto::{Backing, Envelope, HostPair, SpinPolicy};
use support::{child_log, log_call, read_log, spawn_child, temp, terminate};

const N: u64 = 2000;
const PAYLOAD: usize = 8;

fn payload(id: u64) -> Vec<u8> {
    format!("r{id:07}").into_bytes()
}

/// Reads replies (id -> payloads, in arrival order) until `done` or `limit`.
fn collect(
    host: &mut HostPair,
    got: &mut BTreeMap<u64, Vec<Vec<u8>>>,
    order: &mut Vec<u64>,
    limit: Duration,
    done: impl Fn(&BTreeMap<u64, Vec<Vec<u8>>>) -> bool,
) {
    let start = Instant::now();
    while !done(got) && start.elapsed() < limit {
        drain(host, got, order);
        host.replies
            .wait(SpinPolicy::PARK_AT_ONCE, Some(Duration::from_millis(20)))
            .unwrap();
    }
}

/// Reads every reply published so far.
fn drain(host: &mut HostPair, got: &mut BTreeMap<u64, Vec<Vec<u8>>>, order: &mut Vec<u64>) {
    while let Some(r) = host.replies.read().unwrap() {
        let e = r.envelope();
        assert_eq!(e.kind, Kind::Reply);
        got.entry(e.id).or_default().push(r.copy_payload());
        order.push(e.id);
    }
    host.replies.commit_read();
}

#[test]
fn killed_mid_flight_the_restart_answers_every_uncommitted_request() {
    let mut host = HostPair::create("ooo-kill", 1 << 18, 1 << 18, &Backing::Memfd).unwrap();
    for id in 0..N {
        host.requests
            .send(&Envelope::request(id), &payload(id))
            .unwrap();
    }
    let (log1, log2) = (temp("ooo-1.log"), temp("ooo-2.log"));
    let (mut got, mut order) = (BTreeMap::new(), Vec::new());
    let mut child = spawn_child(&host, "reverse", &log1);
    collect(
        &mut host,
        &mut got,
        &mut order,
        Duration::from_secs(30),
        |g| g.len() >= 300,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    drain(&mut host, &mut got, &mut order);
    let rec = record_len(PAYLOAD) as u64;
    let committed = (N * rec - host.requests.in_flight()) / rec;
    let answered_before = got.len() as u64;
    assert!(answered_before < N, "killed before the end");
    assert!(
        order.windows(2).any(|w| w[0] > w[1]),
        "replies were published out of order"
    );

    let child = spawn_child(&host, "reverse", &log2);
    collect(
        &mut host,
        &mut got,
        &mut order,
        Duration::from_secs(60),
        |g| g.len() as u64 == N,
    );
    assert!(terminate(child).success(), "SIGTERM: exit 0");
    let (first, second) = (read_log(&log1), read_log(&log2));
    let _ = (std::fs::remove_file(&log1), std::fs::remove_file(&log2));

    // Committed requests were all answered before the kill; the restart
    // resumed at the commit cursor and handled every later request once,
    // as a second delivery if the first run had read it.
    assert!((0..committed).all(|id| got.contains_key(&id)));
    let mut ids: Vec<u64> = second.iter().map(|&(id, _)| id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (committed..N).collect::<Vec<_>>());
    let read_before: std::collections::BTreeSet<u64> = first.iter().map(|&(id, _)| id).collect();
    for &(id, attempt) in &second {
        let want = if read_before.contains(&id) { 2 } else { 1 };
        assert_eq!(attempt, want, "request {id}");
    }
    for id in 0..N {
        let replies = &got[&id];
        assert!(replies
            .iter()
            .all(|p| *p == payload(id).to_ascii_uppercase()));
        let max = if id < committed { 1 } else { 2 };
        assert!(
            replies.len() <= max,
            "request {id}: {} replies",
            replies.len()
        );
    }
}

/// The plugin under test: answers from a worker thread, each handful of
/// requests in reverse order, about 1 ms apart.
#[test]
#[ignore = "plugin process of the test above"]
fn plugin_child() {
    let mut log = child_log();
    let (tx, rx) = mpsc::channel::<(Vec<u8>, Responder)>();
    std::thread::spawn(move || {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            batch.extend(rx.try_iter().take(15));
            for (p, r) in batch.into_iter().rev() {
                r.reply(Reply::ok(p.to_ascii_uppercase()));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    citadel_plugin::serve_out_of_order(|req, responder| {
        log_call(&mut log, req.id, req.attempt);
        tx.send((req.payload.to_vec(), responder)).unwrap();
    })
    .unwrap();
}
