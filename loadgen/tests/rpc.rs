//! `--protocol rpc` against an in-process RPC server that answers out of order, over TCP,
//! a Unix socket and shared memory, plain and batched; RESP over a Unix socket against
//! redis-server.

mod common;

use common::rpc_server::RpcServer;
use common::{run_loadgen, u, Server};

fn check(report: &serde_json::Value, requests: u64) {
    assert_eq!(u(report, "requests"), requests);
    assert_eq!(u(report, "errors"), 0, "{report}");
    let gets = u(report, "ops.get.requests");
    assert_eq!(gets + u(report, "ops.set.requests"), requests);
    assert_eq!(
        u(report, "ops.get.hits") + u(report, "ops.get.misses"),
        gets
    );
}

#[test]
fn rpc_replies_are_matched_by_id_over_tcp_unix_and_shm() {
    let server = RpcServer::start();
    let endpoints = [
        ["-s", server.addr.as_str()],
        ["--unix", server.unix_path()],
        ["--shm", server.shm_path()],
    ];
    for endpoint in endpoints {
        for batch in ["1", "4"] {
            let mut args = vec!["-P", "rpc", "--batch", batch];
            args.extend(endpoint);
            args.extend([
                "-t", "1", "-c", "3", "-p", "8", "-n", "6000", "--ratio", "1:3", "--keys", "100",
            ]);
            let (status, report, out) = run_loadgen(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(status.success(), "{args:?} failed: {stderr}");
            check(&report, 6000);
            assert_eq!(u(&report, "batch").to_string(), batch);
            // Keys ending in 7 miss on this server: 10 of the 100.
            assert!(u(&report, "ops.get.misses") > 0, "{args:?}: no misses");
            assert!(u(&report, "ops.get.hits") > 0, "{args:?}: no hits");
        }
    }
}

#[test]
fn resp_over_a_unix_socket() {
    let path = std::env::temp_dir().join(format!("loadgen-redis-{}.sock", std::process::id()));
    let path = path.to_str().unwrap();
    let redis = Server::redis_unix(path);
    let before = redis.stat("total_commands_processed", true);
    let (status, report, out) = run_loadgen(&[
        "--unix", path, "-t", "1", "-c", "4", "-p", "4", "-n", "4000", "--ratio", "1:1",
    ]);
    assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check(&report, 4000);
    // The first INFO is counted between the two samples.
    let after = redis.stat("total_commands_processed", true);
    assert_eq!(after - before - 1, 4000);
    assert_eq!(report["servers"][0], format!("unix:{path}"));
}

#[test]
fn shm_is_refused_for_other_protocols() {
    let (mut cmd, _) = common::loadgen(&["--shm", "/nonexistent.sock", "-n", "10"]);
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--shm") && stderr.contains("rpc"),
        "{stderr}"
    );
}

#[test]
fn batch_is_refused_for_in_order_protocols() {
    let (mut cmd, _) = common::loadgen(&["--batch", "4", "-n", "10"]);
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--batch"));
}
