//! Proxy mode end to end (`--cluster-proxy yes`): three citadel nodes
//! with static membership, driven by plain (cluster-unaware) clients
//! connected to one node: the `redis` crate's ordinary connection and raw
//! RESP2/RESP3. Every slot reads and writes through one node, multi-key
//! commands split over the nodes and merge in key order, pipelines keep
//! their order, a transaction on another node's slot runs there, and a
//! killed node fails only its own slots, with a clear error.

use citadel_tests::cluster::Cluster;
use citadel_tests::redis::{self, Commands};
use citadel_tests::reference::encode_command;
use citadel_tests::{Frame, RespReader, Server};

fn send(r: &mut RespReader, args: &[&str]) -> Frame {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.send(&encode_command(&args));
    r.reply().expect("a reply")
}

/// The port of the node that owns `key`: a CLUSTER NOPROXY connection
/// gets -MOVED instead of a forwarded reply.
fn owner_port(node: &Server, key: &str) -> u16 {
    let mut r = RespReader::new(node.raw());
    assert_eq!(
        send(&mut r, &["CLUSTER", "NOPROXY"]),
        Frame::SimpleString(b"OK".to_vec())
    );
    match send(&mut r, &["GET", key]) {
        Frame::Error(e) => {
            assert!(e.starts_with("MOVED "), "{e}");
            e.rsplit(':').next().unwrap().parse().unwrap()
        }
        _ => node.port,
    }
}

/// The first key `k<i>` whose owner is the node on `port`, and one owned
/// by another node (`{tag}` keys share a slot: for transactions).
fn key_owned_by(cluster: &Cluster, port: u16, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| owner_port(&cluster.nodes[0], k) == port)
        .unwrap()
}

#[test]
fn a_plain_client_on_one_node_reads_and_writes_every_slot() {
    let cluster = Cluster::start_proxy(3, &[]);
    let mut con = cluster.nodes[0].client();
    let keys: Vec<String> = (0..300).map(|i| format!("key:{i}")).collect();
    let owners: std::collections::BTreeSet<u16> = keys
        .iter()
        .take(30)
        .map(|k| owner_port(&cluster.nodes[0], k))
        .collect();
    assert_eq!(owners.len(), 3, "the keys span every node");
    for k in &keys {
        let _: () = con.set(k, format!("v-{k}")).unwrap();
    }
    for k in &keys {
        let v: String = con.get(k).unwrap();
        assert_eq!(v, format!("v-{k}"));
    }
    // The values live on their owners: another node's plain client agrees.
    let mut other = cluster.nodes[2].client();
    let v: String = other.get(&keys[7]).unwrap();
    assert_eq!(v, format!("v-{}", keys[7]));
    // Errors come back as the owner wrote them.
    let remote = key_owned_by(&cluster, cluster.nodes[1].port, "typed:");
    let _: () = con.set(&remote, "x").unwrap();
    let e = redis::cmd("PFCOUNT")
        .arg(&remote)
        .query::<i64>(&mut con)
        .unwrap_err();
    assert_eq!(e.code(), Some("WRONGTYPE"), "{e}");
}

#[test]
fn multi_key_commands_split_over_nodes_and_merge_in_key_order() {
    let cluster = Cluster::start_proxy(3, &[]);
    let mut con = cluster.nodes[1].client();
    // 100 keys over every node, every third one missing.
    let keys: Vec<String> = (0..100).map(|i| format!("m:{i}")).collect();
    let mut pairs = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if i % 3 != 0 {
            pairs.push((k.clone(), format!("val{i}")));
        }
    }
    let _: () = con.mset(&pairs).unwrap();
    let got: Vec<Option<String>> = con.mget(&keys).unwrap();
    let want: Vec<Option<String>> = (0..100)
        .map(|i| (i % 3 != 0).then(|| format!("val{i}")))
        .collect();
    assert_eq!(got, want);
    let present = pairs.len() as i64;
    let n: i64 = redis::cmd("EXISTS").arg(&keys).query(&mut con).unwrap();
    assert_eq!(n, present);
    let n: i64 = redis::cmd("TOUCH").arg(&keys).query(&mut con).unwrap();
    assert_eq!(n, present);
    let n: i64 = con.del(&keys[..50]).unwrap();
    assert_eq!(n, (0..50).filter(|i| i % 3 != 0).count() as i64);
    let n: i64 = con.unlink(&keys[50..]).unwrap();
    assert_eq!(n, (50..100).filter(|i| i % 3 != 0).count() as i64);
    let n: i64 = redis::cmd("EXISTS").arg(&keys).query(&mut con).unwrap();
    assert_eq!(n, 0);
    // Every key on this node: served here, slots apart or not.
    let local: Vec<String> = (0..)
        .map(|i| format!("l:{i}"))
        .filter(|k| owner_port(&cluster.nodes[1], k) == cluster.nodes[1].port)
        .take(3)
        .collect();
    let n: i64 = redis::cmd("EXISTS").arg(&local).query(&mut con).unwrap();
    assert_eq!(n, 0);
}

#[test]
fn pipelined_local_and_remote_commands_keep_their_order() {
    let cluster = Cluster::start_proxy(3, &[]);
    let mut con = cluster.nodes[0].client();
    let mut pipe = redis::pipe();
    for i in 0..200 {
        let k = format!("p:{i}");
        pipe.set(&k, i).incr(&k, 1).get(&k);
    }
    let replies: Vec<redis::Value> = pipe.query(&mut con).unwrap();
    assert_eq!(replies.len(), 600);
    for (i, r) in replies.chunks(3).enumerate() {
        assert_eq!(r[0], redis::Value::Okay);
        assert_eq!(r[1], redis::Value::Int(i as i64 + 1));
        assert_eq!(
            r[2],
            redis::Value::BulkString((i + 1).to_string().into_bytes())
        );
    }
}

#[test]
fn resp3_clients_get_resp3_replies_from_other_nodes() {
    let cluster = Cluster::start_proxy(3, &[]);
    let remote = key_owned_by(&cluster, cluster.nodes[1].port, "r3:");
    let mut r = RespReader::new(cluster.nodes[0].raw());
    r.send(&encode_command(&[b"HELLO", b"3"]));
    r.raw_reply().unwrap();
    r.send(&encode_command(&[b"SET", remote.as_bytes(), b"v"]));
    assert_eq!(r.raw_reply().unwrap(), b"+OK\r\n");
    r.send(&encode_command(&[b"GET", remote.as_bytes()]));
    assert_eq!(r.raw_reply().unwrap(), b"$1\r\nv\r\n");
    // RESP3's null, as the owner wrote it for a RESP3 client.
    let missing = key_owned_by(&cluster, cluster.nodes[2].port, "r3:missing");
    r.send(&encode_command(&[b"GET", missing.as_bytes()]));
    assert_eq!(r.raw_reply().unwrap(), b"_\r\n");
}

#[test]
fn transactions_and_scripts_on_another_node_run_there() {
    let cluster = Cluster::start_proxy(3, &[]);
    let there = cluster.nodes[2].port;
    // Two tags: one owned by node 2, one by node 1.
    let tag = key_owned_by(&cluster, there, "tag");
    let elsewhere = key_owned_by(&cluster, cluster.nodes[1].port, "tag");
    let (a, b) = (format!("{{{tag}}}.a"), format!("{{{tag}}}.b"));
    let mut con = cluster.nodes[0].client();
    let (x, y): (i64, i64) = redis::pipe()
        .atomic()
        .incr(&a, 5)
        .incr(&b, 7)
        .query(&mut con)
        .unwrap();
    assert_eq!((x, y), (5, 7));
    let v: i64 = cluster.nodes[2].client().get(&a).unwrap();
    assert_eq!(v, 5);
    // Keys of two nodes in one transaction: Redis's CROSSSLOT.
    let mut r = RespReader::new(cluster.nodes[0].raw());
    assert_eq!(
        send(&mut r, &["MULTI"]),
        Frame::SimpleString(b"OK".to_vec())
    );
    send(&mut r, &["SET", &a, "1"]);
    send(&mut r, &["SET", &elsewhere, "1"]);
    match send(&mut r, &["EXEC"]) {
        Frame::Error(e) => assert!(e.starts_with("CROSSSLOT"), "{e}"),
        other => panic!("expected CROSSSLOT, got {other:?}"),
    }
    // A script whose keys are on node 2 runs there.
    let n: i64 = redis::cmd("EVAL")
        .arg("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        .arg(1)
        .arg(&a)
        .arg(10)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 15);
    // A node's peer connection (CLUSTER NOPROXY) is redirected, never forwarded.
    assert_eq!(owner_port(&cluster.nodes[0], &a), there);
}

#[test]
fn a_killed_node_fails_only_its_slots_with_a_clear_error() {
    let mut cluster = Cluster::start_proxy(3, &["--cluster-forward-timeout-ms", "500"]);
    let dead = cluster.nodes[2].port;
    let dead_key = key_owned_by(&cluster, dead, "d:");
    let live_key = key_owned_by(&cluster, cluster.nodes[1].port, "d:");
    let mut con = cluster.nodes[0].client();
    let _: () = con.set(&dead_key, "x").unwrap();
    let _: () = con.set(&live_key, "y").unwrap();
    cluster.nodes[2].kill9();
    for _ in 0..3 {
        let e = con.get::<_, String>(&dead_key).unwrap_err();
        assert_eq!(e.kind(), redis::ErrorKind::ClusterDown, "{e}");
        let v: String = con.get(&live_key).unwrap();
        assert_eq!(v, "y");
    }
    // A split command with a piece on the dead node fails whole.
    let e = con
        .mget::<_, Vec<Option<String>>>(&[&live_key, &dead_key])
        .unwrap_err();
    assert_eq!(e.kind(), redis::ErrorKind::ClusterDown, "{e}");
    // A raw pipeline: the failed request's error keeps its place.
    let mut r = RespReader::new(cluster.nodes[0].raw());
    let mut batch = encode_command(&[b"GET", live_key.as_bytes()]);
    batch.extend(encode_command(&[b"GET", dead_key.as_bytes()]));
    batch.extend(encode_command(&[b"GET", live_key.as_bytes()]));
    r.send(&batch);
    assert_eq!(r.reply(), Some(Frame::BulkString(b"y".to_vec())));
    assert!(matches!(r.reply(), Some(Frame::Error(e)) if e.starts_with("CLUSTERDOWN")));
    assert_eq!(r.reply(), Some(Frame::BulkString(b"y".to_vec())));
}

#[test]
fn peers_authenticate_with_the_shared_password() {
    let cluster = Cluster::start_proxy(3, &["--requirepass", "s3cret"]);
    let remote = key_owned_by_authed(&cluster);
    let url = format!("redis://:s3cret@127.0.0.1:{}/", cluster.nodes[0].port);
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    let _: () = con.set(&remote, "z").unwrap();
    let v: String = con.get(&remote).unwrap();
    assert_eq!(v, "z");
}

/// A key of another node than node 0, found over authenticated raw RESP.
fn key_owned_by_authed(cluster: &Cluster) -> String {
    let mut r = RespReader::new(cluster.nodes[0].raw());
    send(&mut r, &["AUTH", "s3cret"]);
    send(&mut r, &["CLUSTER", "NOPROXY"]);
    (0..)
        .map(|i| format!("a:{i}"))
        .find(|k| matches!(send(&mut r, &["GET", k]), Frame::Error(e) if e.starts_with("MOVED")))
        .unwrap()
}

#[test]
fn a_stale_view_is_corrected_by_one_more_hop() {
    let cluster = Cluster::start_proxy(3, &[]);
    let [a, b, c] = [0, 1, 2].map(|i| &cluster.nodes[i]);
    // C's keys among the first 40; once A forgets C, some are B's to A.
    let keys: Vec<String> = (0..40).map(|i| format!("s:{i}")).collect();
    let of_c: Vec<&String> = keys.iter().filter(|k| owner_port(a, k) == c.port).collect();
    for k in &of_c {
        let _: () = c.client().set(*k, "fresh").unwrap();
    }
    let two = citadel_tests::cluster::node_list(&[a.port, b.port]);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("cluster-nodes")
        .arg(&two)
        .query(&mut a.client())
        .unwrap();
    let key = of_c
        .into_iter()
        .find(|k| owner_port(a, k) == b.port)
        .expect("one of C's keys goes to B")
        .clone();
    // A forwards to B, B answers A's forwarding connection -MOVED to C,
    // which A follows once.
    let v: String = a.client().get(&key).unwrap();
    assert_eq!(v, "fresh");
    // A transaction on it: B refuses its queue (-MOVED to C) and aborts
    // the EXEC, so nothing ran; A sends it all once more, to C.
    let (set, len): (String, i64) = redis::pipe()
        .atomic()
        .set(&key, "tx")
        .strlen(&key)
        .query(&mut a.client())
        .unwrap();
    assert_eq!((set.as_str(), len), ("OK", 2));
    let v: String = c.client().get(&key).unwrap();
    assert_eq!(v, "tx");
    let _: () = a.client().set(&key, "fresh").unwrap();
    // A split whose piece B cannot serve alone (keys of B and of C, by
    // B's view): Redis's TRYAGAIN, until the views agree again.
    let e = a
        .client()
        .mget::<_, Vec<Option<String>>>(&keys)
        .unwrap_err();
    assert_eq!(e.kind(), redis::ErrorKind::TryAgain, "{e}");
    let three = citadel_tests::cluster::node_list(&cluster.ports());
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("cluster-nodes")
        .arg(&three)
        .query(&mut a.client())
        .unwrap();
    let got: Vec<Option<String>> = a.client().mget(&keys).unwrap();
    let pos = keys.iter().position(|k| *k == key).unwrap();
    assert_eq!(got[pos].as_deref(), Some("fresh"));
}

#[test]
fn a_node_that_stops_answering_times_out_without_holding_up_the_others() {
    let cluster = Cluster::start_proxy(3, &["--cluster-forward-timeout-ms", "300"]);
    let stuck = &cluster.nodes[2];
    let stuck_key = key_owned_by(&cluster, stuck.port, "t:");
    let live_key = key_owned_by(&cluster, cluster.nodes[1].port, "t:");
    let mut con = cluster.nodes[0].client();
    let _: () = con.set(&live_key, "y").unwrap();
    // SIGSTOP: its kernel still accepts connections, nothing answers.
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &stuck.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    let mut r = RespReader::new(cluster.nodes[0].raw());
    let mut batch = encode_command(&[b"GET", stuck_key.as_bytes()]);
    batch.extend(encode_command(&[b"GET", live_key.as_bytes()]));
    batch.extend(encode_command(&[b"GET", stuck_key.as_bytes()]));
    r.send(&batch);
    let first = r.reply();
    let second = r.reply();
    let third = r.reply();
    signal("-CONT");
    assert!(
        matches!(&first, Some(Frame::Error(e)) if e.starts_with("CLUSTERDOWN") && e.contains("timed out")),
        "{first:?}"
    );
    assert_eq!(second, Some(Frame::BulkString(b"y".to_vec())));
    // The circuit is open: failed at once, not after another timeout.
    assert!(
        matches!(&third, Some(Frame::Error(e)) if e.starts_with("CLUSTERDOWN")),
        "{third:?}"
    );
    let v: String = con.get(&live_key).unwrap();
    assert_eq!(v, "y");
}

#[test]
fn a_restarted_node_is_reached_again_on_a_fresh_connection() {
    let mut cluster = Cluster::start_proxy(3, &[]);
    let key = key_owned_by(&cluster, cluster.nodes[2].port, "rs:");
    let mut con = cluster.nodes[0].client();
    let _: () = con.set(&key, "before").unwrap();
    // Node 0's forwarding connections to node 2 are now closed by its end.
    cluster.nodes[2].kill9();
    cluster.nodes[2].restart(true);
    let _: () = con.set(&key, "after").unwrap();
    let v: String = con.get(&key).unwrap();
    assert_eq!(v, "after");
}

#[test]
fn concurrent_clients_sharing_the_peer_links_each_get_their_own_replies() {
    let cluster = Cluster::start_proxy(3, &[]);
    let node = &cluster.nodes[0];
    std::thread::scope(|s| {
        for t in 0..8 {
            s.spawn(move || {
                let mut con = node.client();
                for i in 0..150 {
                    let key = format!("c{t}:{i}");
                    let value = format!("{t}-{i}-{}", "x".repeat(i % 40));
                    let _: () = con.set(&key, &value).unwrap();
                    let got: String = con.get(&key).unwrap();
                    assert_eq!(got, value);
                    if i % 10 == 0 {
                        let keys: Vec<String> = (0..=i).map(|j| format!("c{t}:{j}")).collect();
                        let n: i64 = redis::cmd("EXISTS").arg(&keys).query(&mut con).unwrap();
                        assert_eq!(n, i as i64 + 1);
                    }
                }
            });
        }
    });
}
