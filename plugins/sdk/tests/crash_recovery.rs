//! The SDK against a test harness that plays the server: it creates the
//! rings, spawns this test binary as the plugin (test `plugin_child`), kills
//! and restarts it, and checks delivery guarantees and graceful stop.

mod support;

use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

use citadel_plugin::{Kind, Replies, Reply, Request};
use citadel_proto::envelope::STATUS_POISON;
use citadel_proto::{Backing, Envelope, HostPair, SpinPolicy};
use support::{child_log, log_call, read_log, spawn_child, temp, terminate};

const PAYLOAD: usize = 32; // + 32-byte header: 64-byte records, no padding

fn request_payload(id: u64) -> Vec<u8> {
    format!("{:<1$}", format!("req-{id}"), PAYLOAD).into_bytes()
}

#[derive(Debug, Clone, PartialEq)]
struct Got {
    kind: Kind,
    status: u32,
    attempt: u16,
    payload: Vec<u8>,
}

/// Reads replies into `got` until `done(got)` or `child` exits or `limit` passes.
fn collect(
    host: &mut HostPair,
    got: &mut BTreeMap<u64, Vec<Got>>,
    child: &mut Child,
    limit: Duration,
    done: impl Fn(&BTreeMap<u64, Vec<Got>>) -> bool,
) {
    let start = Instant::now();
    while !done(got) && start.elapsed() < limit {
        while let Some(r) = host.replies.read().unwrap() {
            let e = r.envelope();
            got.entry(e.id).or_default().push(Got {
                kind: e.kind,
                status: e.status,
                attempt: e.attempt,
                payload: r.payload().to_vec(),
            });
        }
        host.replies.commit_read();
        if child.try_wait().unwrap().is_some() {
            return;
        }
        host.replies
            .wait(SpinPolicy::PARK_AT_ONCE, Some(Duration::from_millis(20)))
            .unwrap();
    }
}

#[test]
fn killed_plugin_gets_every_uncommitted_request_again_and_nothing_committed_twice() {
    const N: u64 = 3000;
    let mut host = HostPair::create("kill9", 1 << 18, 1 << 18, &Backing::Memfd).unwrap();
    for id in 0..N {
        host.requests
            .send(&Envelope::request(id), &request_payload(id))
            .unwrap();
    }
    let (log1, log2) = (temp("kill-1.log"), temp("kill-2.log"));
    let mut got = BTreeMap::new();
    let mut child = spawn_child(&host, "batch", &log1);
    collect(
        &mut host,
        &mut got,
        &mut child,
        Duration::from_secs(30),
        |g| g.len() >= 300,
    );
    child.kill().unwrap(); // SIGKILL, mid-batch
    child.wait().unwrap();
    let committed = (N * 64 - host.requests.in_flight()) / 64;
    let mut child = spawn_child(&host, "batch", &log2);
    collect(
        &mut host,
        &mut got,
        &mut child,
        Duration::from_secs(60),
        |g| g.len() as u64 == N,
    );
    assert!(
        terminate(child).success(),
        "SIGTERM must stop the plugin with status 0"
    );

    let (first, second) = (read_log(&log1), read_log(&log2));
    let _ = (std::fs::remove_file(&log1), std::fs::remove_file(&log2));
    // The first run handled 0..k in order, each once, first attempt.
    assert!(
        first
            .iter()
            .enumerate()
            .all(|(i, &(id, a))| id == i as u64 && a == 1),
        "{first:?}"
    );
    let k = first.len() as u64;
    assert!(committed <= k && committed >= 300);
    // The restart resumed at the commit cursor: no committed request again,
    // then every later request once, in order.
    let ids: Vec<u64> = second.iter().map(|&(id, _)| id).collect();
    assert_eq!(ids, (committed..N).collect::<Vec<_>>());
    // Requests handled but not committed before the kill came back with
    // their attempt count incremented in ring memory.
    let redelivered: Vec<_> = second.iter().filter(|&&(id, _)| id < k).collect();
    assert!(
        !redelivered.is_empty(),
        "the kill landed between a commit and the next read"
    );
    assert!(redelivered.iter().all(|&&(_, a)| a == 2), "{redelivered:?}");
    // The batch in hand at the kill (at most 64 requests, counted when the
    // batch was read) is the only one delivered twice; the rest once.
    let twice = second.iter().take_while(|&&(_, a)| a == 2).count();
    assert!(twice >= redelivered.len() && twice <= 64, "{second:?}");
    assert!(second[twice..].iter().all(|&(_, a)| a == 1), "{second:?}");
    // Every request was answered; only redelivered ones may be answered twice.
    for id in 0..N {
        let replies = &got[&id];
        assert!(replies.iter().all(
            |r| r.kind == Kind::Reply && r.payload == request_payload(id).to_ascii_uppercase()
        ));
        assert!(
            replies.len() == 1 || (replies.len() == 2 && id >= committed && id < k),
            "id {id}: {replies:?}"
        );
    }
}

#[test]
fn poison_request_is_skipped_after_three_attempts() {
    let mut host = HostPair::create("poison", 1 << 16, 1 << 16, &Backing::Memfd).unwrap();
    for (id, p) in [b"a".as_slice(), b"poison", b"b"].into_iter().enumerate() {
        host.requests
            .send(&Envelope::request(id as u64), p)
            .unwrap();
    }
    let log = temp("poison.log");
    let mut got = BTreeMap::new();
    let mut crashes = 0;
    let last = loop {
        let mut child = spawn_child(&host, "single", &log);
        collect(
            &mut host,
            &mut got,
            &mut child,
            Duration::from_secs(30),
            |g| g.len() == 3,
        );
        if got.len() == 3 {
            break child;
        }
        let status = child.wait().unwrap();
        assert!(!status.success());
        crashes += 1;
        assert!(crashes <= 3, "restarted more than 3 times");
    };
    assert!(terminate(last).success());
    let calls = read_log(&log);
    let _ = std::fs::remove_file(&log);
    assert_eq!(crashes, 3);
    assert_eq!(calls, vec![(0, 1), (1, 1), (1, 2), (1, 3), (2, 1)]);
    let one = |id: u64| -> Got {
        assert_eq!(got[&id].len(), 1, "{:?}", got[&id]);
        got[&id][0].clone()
    };
    assert_eq!(
        one(0),
        Got {
            kind: Kind::Reply,
            status: 0,
            attempt: 1,
            payload: b"A".to_vec()
        }
    );
    assert_eq!(
        one(1),
        Got {
            kind: Kind::Abandoned,
            status: STATUS_POISON,
            attempt: 4,
            payload: vec![]
        }
    );
    assert_eq!(
        one(2),
        Got {
            kind: Kind::Reply,
            status: 0,
            attempt: 1,
            payload: b"B".to_vec()
        }
    );
}

/// The plugin under test. `single`: `serve`, aborting on "poison".
/// A server killed while it spawned its plugin leaves the plugin a first
/// parent (init here: the harness stands in) that never changes: the
/// plugin still sees that the server it was started by runs no more
/// (`CITADEL_PLUGIN_SERVER_PID`) and exits by itself, idle, instead of
/// living on as an orphan.
#[test]
fn a_plugin_whose_server_died_before_it_started_exits_by_itself() {
    let host = HostPair::create("orphan", 1 << 16, 1 << 16, &Backing::Memfd).unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let log = temp("orphan.log");
    let mut child = citadel_proto::plugin_command(std::env::current_exe().unwrap(), &[&host], 3)
        .args(["--exact", "plugin_child", "--ignored", "--nocapture"])
        .env("TEST_PLUGIN_MODE", "single")
        .env("TEST_PLUGIN_LOG", &log)
        .env(citadel_proto::handshake::ENV_SERVER_PID, dead.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Liveness, not speed: it checks about once a second.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the orphaned plugin did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // `plugin_child` unwraps the serve result: ServerGone fails it.
    assert!(!status.success(), "{status}");
    let _ = std::fs::remove_file(log);
}

/// `batch`: `serve_batch`, 100 µs of work per request.
#[test]
#[ignore = "plugin process of the tests above"]
fn plugin_child() {
    let mut log = child_log();
    let result = match std::env::var("TEST_PLUGIN_MODE").unwrap().as_str() {
        "single" => citadel_plugin::serve(|req| {
            log_call(&mut log, req.id, req.attempt);
            if req.payload == b"poison" {
                std::process::abort();
            }
            req.payload.to_ascii_uppercase()
        }),
        _ => citadel_plugin::serve_batch(|reqs: &[Request<'_>], out: &mut Replies| {
            for req in reqs {
                log_call(&mut log, req.id, req.attempt);
                std::thread::sleep(Duration::from_micros(100));
                out.push(Reply::ok(req.payload.to_ascii_uppercase()));
            }
        }),
    };
    result.unwrap();
}
