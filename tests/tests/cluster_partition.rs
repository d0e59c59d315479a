//! Fencing of whole servers across a real partition: etcd in one network
//! namespace, node B in another (its link to etcd is the one cut; a
//! second link lets this test reach B's clients' port), node A in the
//! test's own namespace. Once B's link to etcd is cut, B must answer
//! `-CLUSTERDOWN` for its slots no later than A starts serving them, so no
//! slot ever has two serving owners; after healing, B serves again.
//! Needs root, `ip netns` and etcd (skipped with a message otherwise).

use std::time::{Duration, Instant};

use citadel_tests::etcd::{self, Etcd, PATIENCE};
use citadel_tests::netns::{Netns, Veth};
use citadel_tests::reference::encode_command;
use citadel_tests::{free_port, Frame, RespReader, Server};

const PASSWORD: &str = "partition-test";

fn send(r: &mut RespReader, args: &[&str]) -> Frame {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.send(&encode_command(&args));
    r.reply().expect("a reply")
}

fn connect(node: &Server) -> RespReader {
    let mut r = RespReader::new(node.raw());
    assert!(matches!(
        send(&mut r, &["AUTH", PASSWORD]),
        Frame::SimpleString(_)
    ));
    r
}

fn known_nodes(r: &mut RespReader) -> bool {
    match send(r, &["CLUSTER", "INFO"]) {
        Frame::BulkString(b) => String::from_utf8_lossy(&b).contains("cluster_known_nodes:2\r\n"),
        _ => false,
    }
}

/// Polls until `ready` (up to PATIENCE; not a timing assertion).
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_error_with(frame: &Frame, prefix: &str) -> bool {
    matches!(frame, Frame::Error(e) if e.starts_with(prefix))
}

#[test]
fn a_cut_off_server_stops_serving_before_another_takes_its_slots() {
    let missing = citadel_tests::netns::unavailable().or_else(etcd::unavailable);
    if let Some(why) = missing {
        eprintln!("skipping: {why}");
        return;
    }
    let etcd_ns = Netns::new("etcd");
    let b_ns = Netns::new("node-b");
    let a_link = Veth::new(None, Some(&etcd_ns));
    let mut b_etcd_link = Veth::new(Some(&b_ns), Some(&etcd_ns));
    let b_client_link = Veth::new(None, Some(&b_ns));
    let etcd = Etcd::start_in(&etcd_ns, &a_link.b.ip);
    let prefix = etcd::test_prefix("server_partition");
    let cluster_flags = |endpoint: &str, announce: &str| -> Vec<String> {
        [
            "--requirepass",
            PASSWORD,
            "--rpc-port",
            "0",
            "--cluster-enabled",
            "yes",
            "--cluster-membership",
            "etcd",
            "--cluster-etcd-endpoints",
            endpoint,
            "--cluster-etcd-prefix",
            &prefix,
            "--cluster-lease-ttl-ms",
            "1000",
            "--cluster-announce",
            announce,
        ]
        .map(String::from)
        .to_vec()
    };
    let a_port = free_port();
    let a_flags = cluster_flags(&etcd.url(), &format!("127.0.0.1:{a_port}"));
    let a_flags: Vec<&str> = a_flags.iter().map(String::as_str).collect();
    let a = Server::start_on(a_port, &a_flags);
    let b_port = free_port();
    let b_host = b_client_link.b.ip.clone();
    let b_flags = cluster_flags(
        &etcd.url_at(&b_etcd_link.b.ip),
        &format!("{b_host}:{b_port}"),
    );
    let b_flags: Vec<&str> = b_flags.iter().map(String::as_str).collect();
    let b = Server::start_in(&b_ns, &b_host, b_port, &b_flags);

    let (mut ra, mut rb) = (connect(&a), connect(&b));
    wait_until("both nodes in both views", || {
        known_nodes(&mut ra) && known_nodes(&mut rb)
    });
    // A key of B's: A redirects it there, B serves it.
    let key = (0..1000)
        .map(|i| format!("key:{i}"))
        .find(|k| is_error_with(&send(&mut ra, &["GET", k]), "MOVED"))
        .expect("B owns some slots");
    assert!(matches!(
        send(&mut rb, &["SET", &key, "b"]),
        Frame::SimpleString(_)
    ));

    b_etcd_link.cut();
    let (mut fenced_at, mut taken_at) = (None, None);
    let deadline = Instant::now() + PATIENCE;
    while fenced_at.is_none() || taken_at.is_none() {
        assert!(
            Instant::now() < deadline,
            "no fence or takeover: {fenced_at:?} {taken_at:?}"
        );
        if fenced_at.is_none() && is_error_with(&send(&mut rb, &["GET", &key]), "CLUSTERDOWN") {
            fenced_at = Some(Instant::now());
        }
        if taken_at.is_none() && !is_error_with(&send(&mut ra, &["GET", &key]), "MOVED") {
            taken_at = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (fenced_at, taken_at) = (fenced_at.unwrap(), taken_at.unwrap());
    eprintln!(
        "B fenced itself {:?} before A took its slot over",
        taken_at.saturating_duration_since(fenced_at)
    );
    assert!(
        fenced_at <= taken_at,
        "B still served its slot {:?} after A took it over",
        fenced_at - taken_at
    );

    b_etcd_link.heal();
    wait_until("B serving again", || {
        !is_error_with(&send(&mut rb, &["GET", &key]), "CLUSTERDOWN")
    });
    drop((ra, rb, a, b));
}
