//! A server that dies mid-run is reported as errors and a non-zero exit, not a hang.

mod common;

use std::time::{Duration, Instant};

use common::{loadgen, read_json, u, Server};

#[test]
fn killed_server_means_errors_and_failure() {
    let mut redis = Server::redis();
    let (mut cmd, json) = loadgen(&[
        "-s",
        &redis.addr(),
        "-c",
        "8",
        "-p",
        "4",
        "--duration",
        "30s",
    ]);
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    redis.kill();
    let killed = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if killed.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("loadgen still running 15 s after the server died");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert!(!status.success(), "exit status should be non-zero");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error rate"),
        "stderr should explain the failure: {stderr}"
    );
    let report = read_json(&json, &out);
    assert!(u(&report, "errors") > 0);
    assert!(u(&report, "errors_by_kind.connection_lost") > 0, "{report}");
    assert!(u(&report, "errors_by_kind.connect_failed") > 0, "{report}");
    assert!(u(&report, "requests") > 0);
}
