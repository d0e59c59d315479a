//! The RPC front door in cluster mode: three static nodes whose member
//! list names their RPC ports. A keyed operation on another node's slot
//! answers `Moved` (the slot, the owner's RPC address), keys in several
//! slots `CrossSlot`, an isolated node `ClusterDown`; the Rust
//! `ClusterClient` (and `AsyncClusterClient`) follows `Moved`, and a node
//! in proxy mode forwards the operation itself. RESP on the owning node sees the same data.

use std::time::{Duration, Instant};

use std::sync::Arc;

use citadel_client::{
    AsyncClusterClient, Client, ClusterClient, Command, Endpoint, Error, ErrorCode, Outcome,
    SetOptions,
};
use citadel_proto::cluster::key_slot;
use citadel_tests::cluster::Cluster;
use citadel_tests::redis::{self, Commands};
use citadel_tests::Server;

fn rpc_addr(node: &Server) -> String {
    format!("127.0.0.1:{}", node.rpc_port)
}

fn client(node: &Server) -> Client {
    Client::connect(rpc_addr(node)).unwrap()
}

/// The index of the node owning each of `keys`, by RESP (-MOVED).
fn owners(cluster: &Cluster, keys: &[String]) -> Vec<usize> {
    keys.iter().map(|k| cluster.owner_of(k)).collect()
}

/// RESP on each key's owner holds its value `v<key>`.
fn owners_hold_their_values(cluster: &Cluster, keys: &[String]) {
    let owners = owners(cluster, keys);
    let mut resp: Vec<redis::Connection> = cluster.nodes.iter().map(Server::client).collect();
    for (k, &owner) in keys.iter().zip(&owners) {
        let v: String = resp[owner].get(k).unwrap();
        assert_eq!(v, format!("v{k}"));
    }
}

fn keys(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn operations_on_other_nodes_slots_answer_moved_with_the_owner() {
    let cluster = Cluster::start_rpc(3, &[]);
    let keys = keys(60, "m:");
    let owners = owners(&cluster, &keys);
    for (i, node) in cluster.nodes.iter().enumerate() {
        let c = client(node);
        for (key, &owner) in keys.iter().zip(&owners) {
            let set = c.set(key, "v");
            let get = c.get(key);
            if owner == i {
                assert!(set.unwrap());
                assert_eq!(get.unwrap().as_deref(), Some(&b"v"[..]));
                continue;
            }
            let want = (key_slot(key.as_bytes()), rpc_addr(&cluster.nodes[owner]));
            for e in [set.unwrap_err(), get.unwrap_err()] {
                let Error::Moved { slot, addr } = e else {
                    panic!("{key} on node {i}: expected Moved, got {e:?}")
                };
                assert_eq!((slot, addr), want, "{key} on node {i}");
            }
            assert_eq!(
                c.incr(key, 1).unwrap_err().server_code(),
                Some(ErrorCode::Moved)
            );
        }
        // Keys in different slots: CrossSlot, whoever owns them.
        let e = c.exists(["a", "b"]).unwrap_err();
        assert_eq!(e.server_code(), Some(ErrorCode::CrossSlot), "{e:?}");
        // A batch: each operation routed on its own.
        let ops: Vec<Command<'_>> = keys.iter().map(|k| Command::get(k.as_bytes())).collect();
        for ((outcome, key), &owner) in c.batch(&ops).unwrap().into_iter().zip(&keys).zip(&owners) {
            match (outcome, owner == i) {
                (Ok(Outcome::Value(Some(v))), true) => assert_eq!(v, b"v"),
                (Err(Error::Moved { addr, .. }), false) => {
                    assert_eq!(addr, rpc_addr(&cluster.nodes[owner]))
                }
                (other, _) => panic!("{key} on node {i}: {other:?}"),
            }
        }
        // Keyless operations are served anywhere.
        assert!(c.stats(Some("server")).is_ok());
    }
}

#[test]
fn a_cluster_client_writes_and_reads_through_any_node() {
    let cluster = Cluster::start_rpc(3, &[]);
    let keys = keys(1000, "c:");
    let writer = ClusterClient::connect([rpc_addr(&cluster.nodes[0])]).unwrap();
    for k in &keys {
        assert!(writer
            .set_with(
                k,
                format!("v{k}"),
                SetOptions::new().ttl(Duration::from_secs(600))
            )
            .unwrap());
    }
    assert!(
        writer.redirects() > 0,
        "two thirds of the keys live elsewhere"
    );
    let before = writer.redirects();
    assert_eq!(writer.incr("c:count", 2).unwrap(), 2);
    assert_eq!(writer.incr("c:count", 3).unwrap(), 5);
    // A slot is followed once, then served straight away.
    assert!(writer.redirects() <= before + 1);
    let tagged = ["{c}1", "{c}2", "{c}3"];
    writer.mset(tagged.iter().map(|k| (k, "t"))).unwrap();
    assert_eq!(writer.exists(tagged).unwrap(), 3);
    for seed in &cluster.nodes[1..] {
        let reader = ClusterClient::connect([rpc_addr(seed)]).unwrap();
        for k in &keys {
            assert_eq!(
                reader.get(k).unwrap(),
                Some(format!("v{k}").into_bytes()),
                "{k}"
            );
        }
        let values = reader.mget(tagged).unwrap();
        assert!(values.iter().all(|v| v.as_deref() == Some(&b"t"[..])));
    }
    // A batch over every node, from a client that knows no slot yet: the
    // seed answers `Moved` for two thirds, which are sent on to their
    // owners; the answers come back in order.
    let fresh = ClusterClient::connect([rpc_addr(&cluster.nodes[2])]).unwrap();
    let ops: Vec<Command<'_>> = keys.iter().map(|k| Command::get(k.as_bytes())).collect();
    let answers = fresh.batch(&ops).unwrap();
    assert!(fresh.redirects() > 0);
    for (answer, k) in answers.into_iter().zip(&keys) {
        match answer {
            Ok(Outcome::Value(Some(v))) => assert_eq!(v, format!("v{k}").into_bytes()),
            other => panic!("{k}: {other:?}"),
        }
    }
    owners_hold_their_values(&cluster, &keys);
}

#[test]
fn the_async_cluster_client_routes_concurrent_calls() {
    let cluster = Cluster::start_rpc(3, &[]);
    let keys = keys(300, "a:");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let seed = rpc_addr(&cluster.nodes[0]);
        let c = Arc::new(AsyncClusterClient::connect([seed]).await.unwrap());
        // Concurrent writes, each routed (and redirected) on its own.
        let mut writes = tokio::task::JoinSet::new();
        for k in keys.clone() {
            let c = Arc::clone(&c);
            writes.spawn(async move { c.set(&k, format!("v{k}")).await });
        }
        while let Some(done) = writes.join_next().await {
            assert!(done.unwrap().unwrap());
        }
        assert!(c.redirects() > 0, "two thirds of the keys live elsewhere");
        // Each slot is learned: reading everything back follows nothing new.
        let before = c.redirects();
        for k in &keys {
            assert_eq!(c.get(k).await.unwrap(), Some(format!("v{k}").into_bytes()));
        }
        assert_eq!(c.redirects(), before);
        let (a, b) = tokio::join!(c.incr("a:count", 2), c.incr("a:count", 3));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!((a, b) == (2, 5) || (a, b) == (5, 3), "{a}, {b}");
        let tagged = ["{a}1", "{a}2"];
        c.mset(tagged.iter().map(|k| (k, "t"))).await.unwrap();
        assert_eq!(c.exists(tagged).await.unwrap(), 2);
        let ops: Vec<Command<'_>> = keys.iter().map(|k| Command::get(k.as_bytes())).collect();
        let answers = c.batch(&ops).await.unwrap();
        assert_eq!(answers.len(), keys.len());
        assert!(answers
            .iter()
            .all(|a| matches!(a, Ok(Outcome::Value(Some(_))))));
        // A seed that is down is skipped.
        let dead = "127.0.0.1:1".to_string();
        let other = AsyncClusterClient::connect([dead, rpc_addr(&cluster.nodes[2])])
            .await
            .unwrap();
        assert_eq!(
            other.get(&keys[0]).await.unwrap(),
            Some(format!("v{}", keys[0]).into_bytes())
        );
    });
    owners_hold_their_values(&cluster, &keys);
}

#[test]
fn proxy_mode_forwards_operations_to_their_node() {
    let cluster = Cluster::start_rpc(3, &["--cluster-proxy", "yes"]);
    let keys = keys(200, "p:");
    let c = client(&cluster.nodes[0]);
    for k in &keys {
        assert!(c.set(k, format!("v{k}")).unwrap());
        assert!(!c.set_with(k, "no", SetOptions::new().nx()).unwrap());
        assert_eq!(c.get(k).unwrap(), Some(format!("v{k}").into_bytes()));
        assert_eq!(c.exists([k]).unwrap(), 1);
    }
    assert_eq!(c.get("p:absent").unwrap(), None);
    assert_eq!(c.incr("p:n", 7).unwrap(), 7);
    let e = c.incr(&keys[0], 1).unwrap_err();
    assert_eq!(e.server_code(), Some(ErrorCode::NotInteger), "{e:?}");
    assert!(c.expire(&keys[1], Duration::from_secs(100)).unwrap());
    let tagged = ["{p}1", "{p}2"];
    c.mset(tagged.iter().map(|k| (k, "t"))).unwrap();
    assert_eq!(
        c.mget(tagged).unwrap(),
        vec![Some(b"t".to_vec()), Some(b"t".to_vec())]
    );
    assert_eq!(c.delete(tagged).unwrap(), 2);
    // Pipelined: many forwards in flight on one connection.
    let pending: Vec<_> = keys
        .iter()
        .map(|k| c.send(&Command::get(k.as_bytes())).unwrap())
        .collect();
    for (p, k) in pending.into_iter().zip(&keys) {
        let want = format!("v{k}").into_bytes();
        assert!(
            matches!(p.wait().unwrap(), Outcome::Value(Some(v)) if v == want),
            "{k}"
        );
    }
    let owners = owners(&cluster, &keys);
    assert!(owners.iter().any(|&o| o != 0));
    for (k, &owner) in keys.iter().zip(&owners) {
        let v: String = cluster.nodes[owner].client().get(k).unwrap();
        assert_eq!(v, format!("v{k}"));
    }
    // Keys of several nodes: split per node, answers merged in key order.
    let spread: Vec<&str> = keys[..30].iter().map(String::as_str).collect();
    c.mset(spread.iter().map(|k| (k, format!("w{k}")))).unwrap();
    let mut asked = spread.clone();
    asked.insert(5, "p:absent");
    let values = c.mget(&asked).unwrap();
    for (k, v) in asked.iter().zip(&values) {
        let want = (*k != "p:absent").then(|| format!("w{k}").into_bytes());
        assert_eq!(v, &want, "{k}");
    }
    assert_eq!(c.exists(&asked).unwrap(), 30);
    assert_eq!(c.delete(&spread[..10]).unwrap(), 10);
    assert_eq!(c.exists(&asked).unwrap(), 20);
    // A batch: its operations on other nodes are forwarded together, the
    // answers come back in order, errors included, each as if local.
    let mut ops: Vec<Command<'_>> = keys[30..90]
        .iter()
        .map(|k| Command::get(k.as_bytes()))
        .collect();
    ops.push(Command::get(b"p:absent"));
    ops.push(Command::incr(keys[40].as_bytes(), 1));
    ops.push(Command::set(b"p:fresh", b"f", SetOptions::new()));
    ops.push(Command::incr(b"p:counter", 5));
    ops.push(Command::incr(b"p:counter", 5));
    ops.push(Command::Exists(vec![b"p:fresh".as_slice()]));
    let outcomes = c.batch(&ops).unwrap();
    assert_eq!(outcomes.len(), ops.len());
    for (k, outcome) in keys[30..90].iter().zip(&outcomes) {
        let want = format!("v{k}").into_bytes();
        assert!(
            matches!(outcome, Ok(Outcome::Value(Some(v))) if *v == want),
            "{k}: {outcome:?}"
        );
    }
    let rest = &outcomes[60..];
    assert!(matches!(rest[0], Ok(Outcome::Value(None))), "{rest:?}");
    let e = rest[1].as_ref().unwrap_err();
    assert_eq!(e.server_code(), Some(ErrorCode::NotInteger), "{e:?}");
    assert!(matches!(rest[2], Ok(Outcome::Done(true))), "{rest:?}");
    assert!(matches!(rest[3], Ok(Outcome::Int(5))), "{rest:?}");
    assert!(matches!(rest[4], Ok(Outcome::Int(10))), "{rest:?}");
    assert!(matches!(rest[5], Ok(Outcome::Int(1))), "{rest:?}");
    let fresh: String = cluster.nodes[cluster.owner_of("p:fresh")]
        .client()
        .get("p:fresh")
        .unwrap();
    assert_eq!(fresh, "f");
}

/// The shared-memory transport is checked the same way: `Moved` without
/// proxy mode, forwarded with it (the forward completes to the ring's
/// session, not a loop connection).
#[test]
fn shared_memory_requests_are_routed_too() {
    let dir = tempfile::tempdir().unwrap();
    let shm = |i: usize| dir.path().join(format!("shm{i}.sock"));
    let flags = |i: usize, proxy: &str| {
        let path = shm(i).display().to_string();
        ["--shm-socket", &path, "--cluster-proxy", proxy]
            .map(String::from)
            .to_vec()
    };
    let cluster = Cluster::start_rpc_each(2, |i| flags(i, "no"));
    let keys = keys(40, "s:");
    let first_owners = owners(&cluster, &keys);
    let c = Client::connect(Endpoint::Shm(shm(0))).unwrap();
    for (k, &owner) in keys.iter().zip(&first_owners) {
        match (c.set(k, "v"), owner) {
            (Ok(true), 0) => {}
            (Err(Error::Moved { addr, .. }), 1) => assert_eq!(addr, rpc_addr(&cluster.nodes[1])),
            other => panic!("{k}: {other:?}"),
        }
    }
    drop((c, cluster));
    let cluster = Cluster::start_rpc_each(2, |i| flags(i + 2, "yes"));
    let c = Client::connect(Endpoint::Shm(shm(2))).unwrap();
    for k in &keys {
        assert!(c.set(k, k).unwrap());
        assert_eq!(c.get(k).unwrap(), Some(k.clone().into_bytes()));
    }
    assert!(owners(&cluster, &keys).contains(&1));
}

/// A node isolated from its membership source (etcd gone) answers
/// `ClusterDown` for every keyed operation.
#[test]
fn an_isolated_node_answers_cluster_down() {
    use citadel_tests::etcd::{self, Etcd};
    if let Some(why) = etcd::unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut etcd = Etcd::start();
    let url = etcd.url();
    let prefix = etcd::test_prefix("cluster_rpc_down");
    let node = Server::start(&[
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
    ]);
    let c = client(&node);
    // The node serves keys once it has joined (its lease granted, on a
    // loaded machine after the first requests may already arrive).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match c.set("k", "v") {
            Ok(stored) => break assert!(stored),
            Err(e)
                if e.server_code() == Some(ErrorCode::ClusterDown) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("SET before etcd went away: {e:?}"),
        }
    }
    etcd.kill();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match c.get("k") {
            Err(e) if e.server_code() == Some(ErrorCode::ClusterDown) => break,
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("expected ClusterDown, got {other:?}"),
        }
    }
    assert!(c.stats(None).is_ok(), "keyless operations are still served");
}
