//! The Python SDK (plugins/python) against the Rust server side: this test
//! plays the server, runs the Python example plugin for real with memfd rings
//! passed as inherited descriptors, and checks every reply.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use citadel_proto::ring::ReserveError;
use citadel_proto::{plugin_command, Backing, Envelope, HostPair, Kind, SpinPolicy};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../python/examples/upper.py")
}

fn payload(id: u64) -> Vec<u8> {
    let len = (id * 7919 % 700) as usize;
    (0..len)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz"[(i + id as usize) % 26])
        .collect()
}

#[test]
fn python_example_plugin_answers_rust_requests_across_wrap_around() {
    const N: u64 = 20_000;
    let mut host = HostPair::create("py", 1 << 16, 1 << 16, &Backing::Memfd).unwrap();
    let mut child = plugin_command("python3", &[&host], 3)
        .arg(example())
        .spawn()
        .expect("python3 runs");
    let (mut sent, mut received) = (0u64, 0u64);
    let start = Instant::now();
    while received < N {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "stuck at {received} replies"
        );
        while sent < N {
            match host.requests.send(&Envelope::request(sent), &payload(sent)) {
                Ok(()) => sent += 1,
                Err(citadel_proto::ring::SendError::Reserve(ReserveError::Full { .. })) => break,
                Err(e) => panic!("{e}"),
            }
        }
        while let Some(r) = host.replies.read().unwrap() {
            let env = r.envelope();
            assert_eq!((env.id, env.kind, env.attempt), (received, Kind::Reply, 1));
            assert_eq!(r.payload(), payload(received).to_ascii_uppercase());
            received += 1;
        }
        host.replies.commit_read();
        if received < sent {
            host.replies
                .wait(SpinPolicy::default(), Some(Duration::from_millis(100)))
                .unwrap();
        } else {
            std::thread::yield_now();
        }
        assert!(child.try_wait().unwrap().is_none(), "plugin exited");
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(
        child.wait().unwrap().success(),
        "SIGTERM must stop the Python plugin with status 0"
    );
}
