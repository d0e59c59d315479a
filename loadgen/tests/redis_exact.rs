//! Every request the load generator reports was processed by the server, exactly.

mod common;

use common::{f, run_loadgen, u, Server};

/// One INFO is counted between the two samples: the first INFO itself.
const INFO_OVERHEAD: u64 = 1;

#[test]
fn requests_match_server_commands_exactly() {
    let redis = Server::redis();
    let before = redis.stat("total_commands_processed", true);
    let (status, report, out) = run_loadgen(&[
        "-s",
        &redis.addr(),
        "-t",
        "2",
        "-c",
        "4",
        "-p",
        "8",
        "-n",
        "20000",
        "--ratio",
        "1:3",
        "--keys",
        "500",
    ]);
    let after = redis.stat("total_commands_processed", true);
    assert!(
        status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(u(&report, "requests"), 20000);
    assert_eq!(u(&report, "errors"), 0);
    assert_eq!(
        after - before - INFO_OVERHEAD,
        20000,
        "server saw a different number of commands"
    );
    let gets = u(&report, "ops.get.requests");
    assert_eq!(
        u(&report, "ops.get.hits") + u(&report, "ops.get.misses"),
        gets
    );
    assert_eq!(gets + u(&report, "ops.set.requests"), 20000);
    for key in [
        "latency_us.get.p50",
        "latency_us.get.p99",
        "latency_us.get.p999",
        "latency_us.set.max",
        "ops_per_sec",
    ] {
        assert!(f(&report, key) > 0.0, "{key} should be positive");
    }
}

#[test]
fn prefill_writes_every_key_once_then_gets_hit() {
    let redis = Server::redis();
    let before = redis.stat("total_commands_processed", true);
    let (status, report, out) = run_loadgen(&[
        "-s",
        &redis.addr(),
        "-c",
        "3",
        "-p",
        "4",
        "-n",
        "3000",
        "--ratio",
        "0:1",
        "--keys",
        "1000",
        "--prefill",
    ]);
    let after = redis.stat("total_commands_processed", true);
    assert!(
        status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(after - before - INFO_OVERHEAD, 1000 + 3000);
    assert_eq!(u(&report, "prefill.requests"), 1000);
    assert_eq!(redis.stat("keyspace_hits", true), 3000);
    assert_eq!(u(&report, "hits"), 3000);
    assert_eq!(f(&report, "hit_rate"), 1.0);
}

#[test]
fn connections_spread_over_servers() {
    let (a, b) = (Server::redis(), Server::redis());
    let before = (
        a.stat("total_commands_processed", true),
        b.stat("total_commands_processed", true),
    );
    let (status, report, out) =
        run_loadgen(&["-s", &a.addr(), "-s", &b.addr(), "-c", "4", "-n", "8000"]);
    assert!(
        status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(u(&report, "requests"), 8000);
    assert_eq!(
        a.stat("total_commands_processed", true) - before.0 - INFO_OVERHEAD,
        4000
    );
    assert_eq!(
        b.stat("total_commands_processed", true) - before.1 - INFO_OVERHEAD,
        4000
    );
}
