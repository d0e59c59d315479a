//! memcache text and binary protocols against a real memcached: hits and misses counted
//! right, and every request reaches the server.

mod common;

use common::{run_loadgen, u, Server};

fn seed_half_the_keys(mc: &Server) {
    let mut req = Vec::new();
    for k in 0..50 {
        req.extend_from_slice(format!("set key:{k} 0 0 5\r\nhello\r\n").as_bytes());
    }
    let reply = mc.request(&req, &b"STORED\r\n".repeat(50));
    assert_eq!(reply.matches("STORED").count(), 50);
}

fn hits_and_misses(protocol: &str) {
    let mc = Server::memcached();
    seed_half_the_keys(&mc);
    let (hits0, misses0) = (mc.stat("get_hits", false), mc.stat("get_misses", false));
    // One connection walking keys 0..99 in order, ten times: 50 of them exist.
    let (status, report, out) = run_loadgen(&[
        "-s",
        &mc.addr(),
        "-P",
        protocol,
        "-c",
        "1",
        "-p",
        "8",
        "-n",
        "1000",
        "--ratio",
        "0:1",
        "--keys",
        "100",
        "--key-dist",
        "sequential",
    ]);
    assert!(
        status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(u(&report, "requests"), 1000);
    assert_eq!(u(&report, "errors"), 0);
    assert_eq!(u(&report, "hits"), 500);
    assert_eq!(u(&report, "misses"), 500);
    assert_eq!(mc.stat("get_hits", false) - hits0, 500);
    assert_eq!(mc.stat("get_misses", false) - misses0, 500);

    let sets0 = mc.stat("cmd_set", false);
    let (status, report, _) = run_loadgen(&[
        "-s",
        &mc.addr(),
        "-P",
        protocol,
        "-c",
        "2",
        "-p",
        "4",
        "-n",
        "400",
        "--ratio",
        "1:0",
        "-d",
        "10-2000",
    ]);
    assert!(status.success());
    assert_eq!(u(&report, "ops.set.ok"), 400);
    assert_eq!(mc.stat("cmd_set", false) - sets0, 400);
}

#[test]
fn memcache_text_counts_hits_and_misses() {
    hits_and_misses("memcache");
}

#[test]
fn memcache_binary_counts_hits_and_misses() {
    hits_and_misses("memcache-binary");
}
