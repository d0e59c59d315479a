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
