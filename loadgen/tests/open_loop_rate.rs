//! `--rate` holds the requested rate (open loop).

mod common;

use common::{f, run_loadgen, u, Server};

#[test]
fn rate_is_held_within_five_percent() {
    let redis = Server::redis();
    let before = redis.stat("total_commands_processed", true);
    let (status, report, out) = run_loadgen(&[
        "-s",
        &redis.addr(),
        "-c",
        "10",
        "--rate",
        "2000",
        "--duration",
        "3s",
        "--ratio",
        "1:1",
    ]);
    let after = redis.stat("total_commands_processed", true);
    assert!(
        status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = u(&report, "requests");
    let rate = f(&report, "ops_per_sec");
    assert!(
        (rate - 2000.0).abs() <= 100.0,
        "ops/s {rate} not within 5% of 2000"
    );
    assert!(
        requests.abs_diff(6000) <= 300,
        "{requests} requests, expected 6000 ± 5%"
    );
    assert_eq!(
        after - before - 1,
        requests,
        "server count differs from reported requests"
    );
    assert_eq!(report["mode"], "open-loop");
}

/// A server that stalls for 500 ms must show ~500 ms latencies: requests due during the
/// stall are charged from their intended send time (no coordinated omission).
#[test]
fn stall_is_charged_to_latency() {
    let redis = Server::redis();
    let pid = redis.child.id() as i32;
    let (mut cmd, json) = common::loadgen(&[
        "-s",
        &redis.addr(),
        "-c",
        "10",
        "--rate",
        "1000",
        "--duration",
        "3s",
    ]);
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    // SAFETY: signals a child process we own.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = common::read_json(&json, &out);
    let max_ms = f(&report, "latency_us.all.max") / 1e3;
    let p99_ms = f(&report, "latency_us.all.p99") / 1e3;
    assert!(
        max_ms >= 400.0,
        "max latency {max_ms} ms hides a 500 ms stall"
    );
    assert!(
        p99_ms >= 300.0,
        "p99 {p99_ms} ms hides a 500 ms stall (~16% of requests were due in it)"
    );
    // At pipeline 1 the requests due in the stall could not be sent until the one in
    // flight was answered: that wait is the client's own lag, reported apart, and the
    // latency from the actual send leaves it out.
    let lag_ms = f(&report, "send_lag_us.max") / 1e3;
    assert!(lag_ms >= 300.0, "send lag max {lag_ms} ms");
    let from_send_p99_ms = f(&report, "latency_from_send_us.p99") / 1e3;
    assert!(
        from_send_p99_ms <= p99_ms,
        "from the actual send {from_send_p99_ms} ms, from the intended {p99_ms} ms"
    );
    assert!(f(&report, "latency_from_send_us.count") == f(&report, "latency_us.all.count"));
    // Open loop, each good reply also bounds how long it sat unread in its socket.
    assert!(f(&report, "reply_lag_us.count") > 0.0);
}
