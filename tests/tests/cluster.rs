//! Cluster mode end to end: three (then four) citadel nodes on 127.0.0.1
//! with static membership, driven by the `redis` crate's cluster client,
//! raw RESP and `redis-cli -c`; CLUSTER KEYSLOT compared with a real
//! redis-server.

use std::collections::BTreeSet;
use std::process::Command;

use citadel_tests::cluster::{node_list, Cluster};
use citadel_tests::redis::{self, cluster::ClusterClient, Commands};
use citadel_tests::reference::{encode_command, RedisServer};
use citadel_tests::{run_to_exit, Frame, RespReader, Server};

/// A deterministic stream of test keys (some with hash tags).
fn keys(n: usize, seed: u64) -> Vec<String> {
    let mut x = seed;
    (0..n)
        .map(|i| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            match i % 4 {
                0 => format!("{{user{}}}.{}", x >> 50, x >> 40),
                1 => format!("k{:x}", x >> 20),
                2 => format!("{{}}{}{{", x >> 30),
                _ => format!("{}{{{}}}", x >> 33, x % 7),
            }
        })
        .collect()
}

fn send(r: &mut RespReader, args: &[&str]) -> Frame {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.send(&encode_command(&args));
    r.reply().expect("a reply")
}

fn error(frame: Frame) -> String {
    match frame {
        Frame::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn slot_of(node: &Server, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(&mut node.client())
        .unwrap()
}

/// The node port serving `key`, by asking node 0 (MOVED names it).
fn owner_port(cluster: &Cluster, key: &str) -> u16 {
    let mut r = RespReader::new(cluster.nodes[0].raw());
    match send(&mut r, &["GET", key]) {
        Frame::Error(e) => e.rsplit(':').next().unwrap().parse().unwrap(),
        _ => cluster.nodes[0].port,
    }
}

#[test]
fn the_cluster_client_reads_and_writes_across_all_slots() {
    let cluster = Cluster::start(3);
    let client = ClusterClient::new(cluster.urls()).unwrap();
    let mut con = client.get_connection().unwrap();
    let keys = keys(600, 1);
    for (i, k) in keys.iter().enumerate() {
        let _: () = con.set(k, i).unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        let v: usize = con.get(k).unwrap();
        assert_eq!(v, i, "{k}");
    }
    // Hash-tagged keys stay together: one MGET.
    let _: () = con.set("{order7}.a", "1").unwrap();
    let _: () = con.set("{order7}.b", "2").unwrap();
    let both: Vec<String> = con.mget(&["{order7}.a", "{order7}.b"]).unwrap();
    assert_eq!(both, vec!["1", "2"]);
    // A cluster pipeline spreads its commands over the nodes.
    let mut pipe = redis::cluster::cluster_pipe();
    for k in &keys[..50] {
        pipe.incr(format!("n:{k}"), 1);
    }
    let counts: Vec<i64> = pipe.query(&mut con).unwrap();
    assert_eq!(counts, vec![1; 50]);
    // Every node holds some keys: the slots are spread.
    for node in &cluster.nodes {
        let n: usize = redis::cmd("DBSIZE").query(&mut node.client()).unwrap();
        assert!(n > 100, "node {} holds only {n} keys", node.port);
    }
}

#[test]
fn moved_crossslot_and_no_redirect_loops() {
    let cluster = Cluster::start(3);
    let mut readers: Vec<RespReader> = cluster
        .nodes
        .iter()
        .map(|n| RespReader::new(n.raw()))
        .collect();
    let ports = cluster.ports();
    let mut redirected = BTreeSet::new();
    for (i, key) in keys(300, 2).iter().enumerate() {
        // Ask any node; at most one redirect leads to the owner.
        let first = i % readers.len();
        match send(&mut readers[first], &["SET", key, "v"]) {
            Frame::SimpleString(ok) => assert_eq!(ok, b"OK"),
            Frame::Error(e) => {
                let mut words = e.split(' ');
                assert_eq!(words.next(), Some("MOVED"), "{e}");
                let slot: u16 = words.next().unwrap().parse().unwrap();
                assert_eq!(slot, slot_of(&cluster.nodes[0], key));
                let port: u16 = words
                    .next()
                    .unwrap()
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let owner = ports.iter().position(|&p| p == port).expect("a member");
                assert_ne!(owner, first);
                redirected.insert(owner);
                let again = send(&mut readers[owner], &["SET", key, "v"]);
                assert_eq!(again, Frame::SimpleString(b"OK".to_vec()), "{key}");
                let read = send(&mut readers[owner], &["GET", key]);
                assert_eq!(read, Frame::BulkString(b"v".to_vec()), "{key}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(redirected.len(), 3, "every node owns slots");
    // Keys in different slots: CROSSSLOT, even when all are local.
    let r = &mut readers[0];
    assert_eq!(
        error(send(r, &["MSET", "a", "1", "b", "2"])),
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    // Hash tags keep keys together, on the tag's node.
    let owner = owner_port(&cluster, "{tag}");
    let node = cluster.nodes.iter().find(|n| n.port == owner).unwrap();
    let mut r = RespReader::new(node.raw());
    let reply = send(&mut r, &["MSET", "{tag}a", "1", "{tag}b", "2"]);
    assert_eq!(reply, Frame::SimpleString(b"OK".to_vec()));
    // Keyless commands are served anywhere.
    let mut r0 = RespReader::new(cluster.nodes[0].raw());
    assert_eq!(
        send(&mut r0, &["PING"]),
        Frame::SimpleString(b"PONG".to_vec())
    );
}

/// Two keys in different slots, both owned by `node`.
fn two_local_slots(cluster: &Cluster, node: u16) -> (String, String) {
    let mut local = keys(400, 3)
        .into_iter()
        .filter(|k| owner_port(cluster, k) == node);
    let a = local.next().unwrap();
    let a_slot = slot_of(&cluster.nodes[0], &a);
    let b = local
        .find(|k| slot_of(&cluster.nodes[0], k) != a_slot)
        .unwrap();
    (a, b)
}

#[test]
fn transactions_scripts_and_shard_channels_route_by_slot() {
    let cluster = Cluster::start(3);
    let node = &cluster.nodes[0];
    let here = node.port;
    let elsewhere = keys(100, 4)
        .into_iter()
        .find(|k| owner_port(&cluster, k) != here)
        .unwrap();
    let (a, b) = two_local_slots(&cluster, here);
    let mut r = RespReader::new(node.raw());

    // MULTI: a command for another node is refused when queued, EXEC aborts.
    assert_eq!(
        send(&mut r, &["MULTI"]),
        Frame::SimpleString(b"OK".to_vec())
    );
    assert!(error(send(&mut r, &["SET", &elsewhere, "1"])).starts_with("MOVED "));
    assert_eq!(
        send(&mut r, &["SET", &a, "1"]),
        Frame::SimpleString(b"QUEUED".to_vec())
    );
    assert!(error(send(&mut r, &["EXEC"])).starts_with("EXECABORT"));
    // Each local, but two slots across the queue: EXEC answers CROSSSLOT.
    send(&mut r, &["MULTI"]);
    assert_eq!(
        send(&mut r, &["SET", &a, "1"]),
        Frame::SimpleString(b"QUEUED".to_vec())
    );
    assert_eq!(
        send(&mut r, &["SET", &b, "1"]),
        Frame::SimpleString(b"QUEUED".to_vec())
    );
    assert!(error(send(&mut r, &["EXEC"])).starts_with("CROSSSLOT"));
    assert_eq!(
        send(&mut r, &["GET", &a]),
        Frame::Null,
        "the queue did not run"
    );
    // One slot: runs.
    send(&mut r, &["MULTI"]);
    send(&mut r, &["SET", &a, "x"]);
    send(&mut r, &["GET", &a]);
    let ran = send(&mut r, &["EXEC"]);
    assert_eq!(
        ran,
        Frame::Array(vec![
            Frame::SimpleString(b"OK".to_vec()),
            Frame::BulkString(b"x".to_vec())
        ])
    );

    // EVAL and FCALL route by their declared keys.
    let script = "return redis.call('GET', KEYS[1])";
    assert!(error(send(&mut r, &["EVAL", script, "1", &elsewhere])).starts_with("MOVED "));
    assert!(error(send(&mut r, &["EVAL", script, "2", &a, &b])).starts_with("CROSSSLOT"));
    assert_eq!(
        send(&mut r, &["EVAL", script, "1", &a]),
        Frame::BulkString(b"x".to_vec())
    );
    assert_eq!(send(&mut r, &["EVAL", "return 1", "0"]), Frame::Integer(1));
    // A key the script did not declare is checked when it is touched.
    let undeclared = "return redis.call('GET', ARGV[1])";
    assert_eq!(
        send(&mut r, &["EVAL", undeclared, "0", &a]),
        Frame::BulkString(b"x".to_vec())
    );
    let refused = error(send(&mut r, &["EVAL", undeclared, "0", &elsewhere]));
    assert!(
        refused.starts_with("ERR Script attempted to access a non local key in a cluster node"),
        "{refused}"
    );
    let two = "return redis.call('MGET', ARGV[1], ARGV[2])";
    let refused = error(send(&mut r, &["EVAL", two, "0", &a, &b]));
    assert!(
        refused
            .starts_with("ERR Script attempted to access keys that do not hash to the same slot"),
        "{refused}"
    );
    assert!(error(send(&mut r, &["FCALL", "nosuch", "1", &elsewhere])).starts_with("MOVED "));

    // A pipeline call on a key runs where the key is cached.
    let call = ["PIPELINE", "CALL", "ocr", "FPS", "1", "KEY", &elsewhere];
    assert!(error(send(&mut r, &call)).starts_with("MOVED "));
    let inline = error(send(&mut r, &["PIPELINE", "CALL", "ocr", "DATA", "x"]));
    assert!(!inline.starts_with("MOVED"), "{inline}");

    // SPUBLISH / SSUBSCRIBE route by the channel's slot.
    assert!(error(send(&mut r, &["SPUBLISH", &elsewhere, "m"])).starts_with("MOVED "));
    assert_eq!(send(&mut r, &["SPUBLISH", &a, "m"]), Frame::Integer(0));
    assert!(error(send(&mut r, &["SSUBSCRIBE", &a, &b])).starts_with("CROSSSLOT"));
}

fn cluster_reply(node: &Server, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd("CLUSTER");
    for a in args {
        cmd.arg(*a);
    }
    cmd.query(&mut node.client()).unwrap()
}

fn text(v: redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("{other:?}"),
    }
}

#[test]
fn cluster_commands_answer_in_redis_shapes() {
    let cluster = Cluster::start(3);
    let node = &cluster.nodes[1];
    // SLOTS: ranges covering every slot exactly once, owners among the nodes.
    let redis::Value::Array(ranges) = cluster_reply(node, &["SLOTS"]) else {
        panic!("SLOTS is an array")
    };
    let mut next = 0;
    let ports: Vec<i64> = cluster.ports().iter().map(|&p| i64::from(p)).collect();
    for range in ranges {
        let redis::Value::Array(r) = range else {
            panic!()
        };
        let (redis::Value::Int(start), redis::Value::Int(end)) = (&r[0], &r[1]) else {
            panic!()
        };
        assert_eq!(*start, next);
        next = end + 1;
        let redis::Value::Array(owner) = &r[2] else {
            panic!()
        };
        assert_eq!(owner[0], redis::Value::BulkString(b"127.0.0.1".to_vec()));
        let redis::Value::Int(port) = owner[1] else {
            panic!()
        };
        assert!(ports.contains(&port));
    }
    assert_eq!(next, 16384);
    // NODES: one line per member, this one flagged myself, ids as MYID.
    let nodes = text(cluster_reply(node, &["NODES"]));
    let lines: Vec<&str> = nodes.lines().collect();
    assert_eq!(lines.len(), 3);
    let myid = text(cluster_reply(node, &["MYID"]));
    assert_eq!(myid.len(), 40);
    let mine = lines.iter().find(|l| l.contains("myself")).unwrap();
    assert!(mine.starts_with(&myid), "{mine}");
    assert!(mine.contains(&format!("127.0.0.1:{}@", node.port)));
    assert_eq!(text(cluster_reply(node, &["MYSHARDID"])), myid);
    // INFO.
    let info = text(cluster_reply(node, &["INFO"]));
    assert!(
        info.contains("cluster_state:ok\r\n") && info.contains("cluster_known_nodes:3\r\n"),
        "{info}"
    );
    let server_info: String = redis::cmd("INFO")
        .arg("cluster")
        .query(&mut node.client())
        .unwrap();
    assert!(server_info.contains("cluster_enabled:1"), "{server_info}");
    // SHARDS: one shard per node, each with its slots.
    let redis::Value::Array(shards) = cluster_reply(node, &["SHARDS"]) else {
        panic!()
    };
    assert_eq!(shards.len(), 3);
    // KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT.
    let owner = cluster
        .nodes
        .iter()
        .find(|n| n.port == owner_port(&cluster, "{kt}"))
        .unwrap();
    let mut con = owner.client();
    for i in 0..5 {
        let _: () = con.set(format!("{{kt}}{i}"), i).unwrap();
    }
    let slot = slot_of(owner, "{kt}").to_string();
    assert_eq!(
        cluster_reply(owner, &["COUNTKEYSINSLOT", &slot]),
        redis::Value::Int(5)
    );
    let redis::Value::Array(got) = cluster_reply(owner, &["GETKEYSINSLOT", &slot, "3"]) else {
        panic!()
    };
    assert_eq!(got.len(), 3);
    let mut r = RespReader::new(owner.raw());
    assert_eq!(
        error(send(&mut r, &["CLUSTER", "COUNTKEYSINSLOT", "16384"])),
        "ERR Invalid slot"
    );
    assert_eq!(
        error(send(&mut r, &["CLUSTER", "GETKEYSINSLOT", "1", "-1"])),
        "ERR Invalid slot or number of keys"
    );
    assert_eq!(
        send(&mut r, &["READONLY"]),
        Frame::SimpleString(b"OK".to_vec())
    );
    assert_eq!(
        send(&mut r, &["ASKING"]),
        Frame::SimpleString(b"OK".to_vec())
    );
}

#[test]
fn keyslot_matches_redis_server_and_cluster_off_is_refused_like_redis() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nodes.conf");
    let redis_server = RedisServer::start_with(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        conf.to_str().unwrap(),
    ]);
    let single = Server::start(&[]);
    let mut theirs = RespReader::new(redis_server.raw());
    let mut ours = RespReader::new(single.raw());
    for key in keys(400, 5).iter().chain(
        ["", "{", "}{", "{}", "a{b}c{d}"]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .iter(),
    ) {
        let want = send(&mut theirs, &["CLUSTER", "KEYSLOT", key]);
        assert_eq!(
            send(&mut ours, &["CLUSTER", "KEYSLOT", key]),
            want,
            "{key:?}"
        );
    }
    // Off: Redis's error for the rest, and INFO says so.
    for args in [
        &["CLUSTER", "SLOTS"][..],
        &["CLUSTER", "INFO"],
        &["READONLY"],
        &["CLUSTER", "COUNTKEYSINSLOT", "1"],
    ] {
        assert_eq!(
            error(send(&mut ours, args)),
            "ERR This instance has cluster support disabled"
        );
    }
    let info: String = redis::cmd("INFO")
        .arg("cluster")
        .query(&mut single.client())
        .unwrap();
    assert!(info.contains("cluster_enabled:0"));
    let _: () = single.client().set("any", "where").unwrap();
}

/// Startup errors: an etcd nobody answers at.
#[test]
fn an_unreachable_etcd_is_refused_at_startup() {
    let no_etcd = format!("http://127.0.0.1:{}", citadel_tests::free_port());
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let port = citadel_tests::free_port().to_string();
    let args = [
        "--port",
        &port,
        "--cache-file",
        cache.to_str().unwrap(),
        "--maxmemory",
        "8mb",
        "--cluster-enabled",
        "yes",
        "--cluster-membership",
        "etcd",
        "--cluster-lease-ttl-ms",
        "1000",
        "--cluster-etcd-endpoints",
        &no_etcd,
    ];
    let (status, out) = run_to_exit(&args);
    assert!(!status.success());
    assert!(
        out.contains("cluster-membership etcd: registering in etcd failed"),
        "{out}"
    );
}

fn redis_cli(port: u16, cluster_mode: bool, args: &[&str]) -> String {
    let mut cmd = Command::new("redis-cli");
    if cluster_mode {
        cmd.arg("-c");
    }
    let out = cmd
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_fourth_node_joins_live_and_clients_follow_moved() {
    let mut cluster = Cluster::start(3);
    let client = ClusterClient::new(cluster.urls()).unwrap();
    let mut con = client.get_connection().unwrap();
    let before = text(cluster_reply(&cluster.nodes[0], &["NODES"]));
    cluster.join_one();
    let newcomer = cluster.nodes[3].port;
    let list = node_list(&cluster.ports());
    let shown: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("cluster-nodes")
        .query(&mut cluster.nodes[0].client())
        .unwrap();
    assert_eq!(shown[1], list);
    // Every node now agrees on four members and the same slots.
    let slots: Vec<redis::Value> = cluster
        .nodes
        .iter()
        .map(|n| cluster_reply(n, &["SLOTS"]))
        .collect();
    assert!(slots.iter().all(|s| *s == slots[0]), "the nodes disagree");
    let nodes = text(cluster_reply(&cluster.nodes[0], &["NODES"]));
    assert_eq!(nodes.lines().count(), 4);
    assert_ne!(nodes, before);
    // About a quarter of the slots moved to the newcomer (never more than
    // its capped share, 1.05 of a quarter).
    let moved = nodes
        .lines()
        .find(|l| l.contains(&format!(":{newcomer}@")))
        .unwrap()
        .split(' ')
        .skip(8)
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<u32>().unwrap() - a.parse::<u32>().unwrap() + 1,
            None => 1,
        })
        .sum::<u32>();
    assert!(
        f64::from(moved) <= 1.1 * 16384.0 / 4.0 && moved > 3000,
        "moved {moved}"
    );
    // The client's slot map is stale: it follows MOVED to the newcomer.
    let keys = keys(200, 6);
    for k in &keys {
        let _: () = con.set(k, "after").unwrap();
    }
    let on_new = keys
        .iter()
        .filter(|k| owner_port(&cluster, k) == newcomer)
        .count();
    assert!(on_new > 20, "{on_new} keys on the newcomer");
    let n: usize = redis::cmd("DBSIZE")
        .query(&mut cluster.nodes[3].client())
        .unwrap();
    assert_eq!(n, on_new);
    // redis-cli -c follows MOVED; without -c it shows it.
    let k = keys
        .iter()
        .find(|k| owner_port(&cluster, k) == newcomer)
        .unwrap();
    let first = cluster.nodes[0].port;
    assert_eq!(redis_cli(first, true, &["GET", k]), "after");
    assert!(redis_cli(first, false, &["GET", k]).starts_with("MOVED"));
}

/// Waits (up to `etcd::PATIENCE`, not a timing assertion) until `ready`.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + citadel_tests::etcd::PATIENCE;
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn cluster_info(node: &Server) -> String {
    text(cluster_reply(node, &["INFO"]))
}

/// Two nodes with etcd membership: they find each other, serve the slots
/// between them, stop serving (-CLUSTERDOWN) when etcd is gone and serve
/// again once it is back.
#[test]
fn nodes_over_etcd_share_the_slots_and_fence_when_cut_off() {
    use citadel_tests::etcd::{self, Etcd};
    if let Some(why) = etcd::unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut etcd = Etcd::start();
    let url = etcd.url();
    let prefix = etcd::test_prefix("cluster_over_etcd");
    let flags = [
        "--cluster-enabled",
        "yes",
        "--cluster-membership",
        "etcd",
        "--cluster-etcd-endpoints",
        &url,
        "--cluster-etcd-prefix",
        &prefix,
        "--cluster-lease-ttl-ms",
        "1000",
    ];
    let nodes = [Server::start(&flags), Server::start(&flags)];
    for node in &nodes {
        wait_until("two members", || {
            cluster_info(node).contains("cluster_known_nodes:2\r\n")
        });
    }
    let client = ClusterClient::new(nodes.iter().map(Server::url).collect::<Vec<_>>()).unwrap();
    let mut con = client.get_connection().unwrap();
    for k in keys(50, 7) {
        let _: () = con.set(&k, "v").unwrap();
        let v: String = con.get(&k).unwrap();
        assert_eq!(v, "v");
    }
    etcd.kill();
    let mut r = RespReader::new(nodes[0].raw());
    wait_until(
        "isolation",
        || matches!(send(&mut r, &["GET", "{x}"]), Frame::Error(e) if e == "CLUSTERDOWN The cluster is down"),
    );
    assert!(cluster_info(&nodes[0]).starts_with("cluster_state:fail"));
    etcd.restart();
    wait_until("serving again", || {
        cluster_info(&nodes[0]).starts_with("cluster_state:ok")
    });
}

/// Servers of one host sharing a discovery directory form a cluster
/// without etcd: each finds the others' records, they share the slots and
/// a cluster client works across them; a node killed with SIGKILL (its
/// record left behind, its process gone) drops out of the others' views.
#[test]
fn servers_sharing_a_discovery_directory_form_a_cluster() {
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().display().to_string();
    let flags = [
        "--cluster-enabled",
        "yes",
        "--cluster-membership",
        "directory",
        "--discovery-dir",
        &dir,
    ];
    let mut nodes: Vec<Server> = (0..3).map(|_| Server::start(&flags)).collect();
    for node in &nodes {
        wait_until("three members", || {
            cluster_info(node).contains("cluster_known_nodes:3\r\n")
        });
    }
    let client = ClusterClient::new(nodes.iter().map(Server::url).collect::<Vec<_>>()).unwrap();
    let mut con = client.get_connection().unwrap();
    for k in keys(60, 11) {
        let _: () = con.set(&k, "v").unwrap();
        let v: String = con.get(&k).unwrap();
        assert_eq!(v, "v");
    }
    nodes[2].kill9();
    for node in &nodes[..2] {
        wait_until("the killed node dropped", || {
            cluster_info(node).contains("cluster_known_nodes:2\r\n")
        });
    }
}

/// kill -9 of a node over etcd: its lease expires, the survivors take its
/// slots, and a cluster client recovers (following MOVED to the new
/// owners): every key is writable again and reads back what was written
/// last, never an older value.
#[test]
fn a_killed_node_s_slots_move_to_the_survivors_after_its_lease() {
    use citadel_tests::etcd::{self, Etcd};
    if let Some(why) = etcd::unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let etcd = Etcd::start();
    let url = etcd.url();
    let prefix = etcd::test_prefix("cluster_kill9");
    let flags = [
        "--cluster-enabled",
        "yes",
        "--cluster-membership",
        "etcd",
        "--cluster-etcd-endpoints",
        &url,
        "--cluster-etcd-prefix",
        &prefix,
        "--cluster-lease-ttl-ms",
        "1000",
    ];
    let mut nodes: Vec<Server> = (0..3).map(|_| Server::start(&flags)).collect();
    for node in &nodes {
        wait_until("three members", || {
            cluster_info(node).contains("cluster_known_nodes:3\r\n")
        });
    }
    let urls: Vec<String> = nodes.iter().map(Server::url).collect();
    let client = ClusterClient::new(urls).unwrap();
    let mut con = client.get_connection().unwrap();
    let keys = keys(60, 5);
    for k in &keys {
        let _: () = con.set(k, "before").unwrap();
    }
    // Who owned each key before the kill (a survivor's answer to GET).
    let slot_owner_port = |node: &Server, k: &str| -> u16 {
        let mut r = RespReader::new(node.raw());
        match send(&mut r, &["GET", k]) {
            Frame::Error(e) if e.starts_with("MOVED") => e
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
            _ => node.port,
        }
    };
    let owners: Vec<u16> = keys.iter().map(|k| slot_owner_port(&nodes[0], k)).collect();
    nodes[2].kill9();
    for node in &nodes[..2] {
        wait_until("the killed node's lease expired", || {
            cluster_info(node).contains("cluster_known_nodes:2\r\n")
        });
    }
    // A fresh client (its first slot map comes from a survivor) and the
    // old one (it follows MOVED, after failing on the dead node).
    let survivors = vec![nodes[0].url(), nodes[1].url()];
    let mut fresh = ClusterClient::new(survivors)
        .unwrap()
        .get_connection()
        .unwrap();
    for k in &keys {
        let _: () = fresh.set(k, "after").unwrap();
        let v: String = fresh.get(k).unwrap();
        assert_eq!(v, "after");
    }
    // The old connection still reads the survivors' keys (its map is
    // right for them); it does not leave the dead node's slots by itself:
    // the `redis` crate's sync cluster client refreshes its map on MOVED,
    // which a dead node cannot send (a new connection, as above, starts
    // from a survivor's map).
    let survivor_key = keys
        .iter()
        .zip(&owners)
        .find(|(_, &owner)| owner != nodes[2].port)
        .map(|(k, _)| k)
        .expect("a key the survivors owned all along");
    let v: String = con.get(survivor_key).unwrap();
    assert_eq!(v, "after");
}
