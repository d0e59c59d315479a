//! Warm hand-off on the RPC front door (`rpc/handoff.rs`): after a fourth
//! node joins, every RPC operation that reads a moved key (EXISTS, TTL,
//! INCR, EXPIRE, SET NX, and each such operation of a batch) on the
//! newcomer first reads it from the slot's previous owner, as the RESP
//! commands do; a plain SET overwrites without asking. In proxy mode the
//! newcomer's own piece of a split EXISTS or MGET hands off too.

use std::time::Duration;

use citadel_client::{Client, Command, Outcome, SetOptions, Ttl};
use citadel_tests::clients::info_field;
use citadel_tests::cluster::Cluster;
use citadel_tests::redis::cluster::ClusterClient;
use citadel_tests::redis::{self, Commands};

/// Ten minutes: the TTL of every `ttl:` key.
const TTL: Duration = Duration::from_secs(600);

fn handoff_counter(node: &citadel_tests::Server, field: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("cluster")
        .query(&mut node.client())
        .unwrap();
    info_field(&info, &format!("cluster_handoff_{field}"))
}

/// The value `key` holds on node `i` (read past proxy mode).
fn held(cluster: &Cluster, i: usize, key: &str) -> Option<String> {
    let mut direct = cluster.nodes[i].client();
    let _: () = redis::cmd("CLUSTER")
        .arg("NOPROXY")
        .query(&mut direct)
        .unwrap();
    direct.get(key).unwrap()
}

#[test]
fn rpc_exists_ttl_incr_expire_set_nx_and_batches_hand_off() {
    let mut cluster = Cluster::start(3);
    let client = ClusterClient::new(cluster.urls()).unwrap();
    let mut con = client.get_connection().unwrap();
    for i in 0..300 {
        let _: () = con.set(format!("plain:{i}"), "p").unwrap();
        let _: () = con.set(format!("n:{i}"), 41).unwrap();
        let ttl_ms = TTL.as_millis() as u64;
        let _: () = con.pset_ex(format!("ttl:{i}"), "t", ttl_ms).unwrap();
    }
    cluster.join_one();
    let moved = |prefix: &str| -> Vec<String> {
        (0..300)
            .map(|i| format!("{prefix}:{i}"))
            .filter(|k| cluster.owner_of(k) == 3)
            .collect()
    };
    let (plain, counters, timed) = (moved("plain"), moved("n"), moved("ttl"));
    assert!(plain.len() > 8 && counters.len() > 8 && timed.len() > 8);
    let rpc = Client::connect(format!("127.0.0.1:{}", cluster.nodes[3].rpc_port)).unwrap();

    assert_eq!(rpc.exists([&plain[0]]).unwrap(), 1);
    assert_eq!(
        rpc.incr(&counters[0], 1).unwrap(),
        42,
        "continues the count"
    );
    assert!(matches!(rpc.ttl(&plain[2]).unwrap(), Ttl::Persistent));
    match rpc.ttl(&timed[0]).unwrap() {
        Ttl::Expires(left) => assert!(left <= TTL && left > TTL / 2, "{left:?}"),
        other => panic!("TTL kept: {other:?}"),
    }
    assert!(rpc.expire(&timed[1], Duration::from_secs(100)).unwrap());
    assert!(
        matches!(rpc.ttl(&timed[1]).unwrap(), Ttl::Expires(d) if d <= Duration::from_secs(100))
    );
    let nx = SetOptions::new().nx();
    assert!(!rpc.set_with(&plain[3], "new", nx).unwrap(), "it exists");
    assert_eq!(held(&cluster, 3, &plain[3]).as_deref(), Some("p"));
    // A plain SET overwrites: nothing asked.
    let hits = handoff_counter(&cluster.nodes[3], "hits");
    assert!(rpc.set_with(&plain[4], "over", SetOptions::new()).unwrap());
    assert_eq!(handoff_counter(&cluster.nodes[3], "hits"), hits);
    assert_eq!(held(&cluster, 3, &plain[4]).as_deref(), Some("over"));

    // A batch run here: each reading operation's keys are asked first,
    // then it runs in order.
    let ops = vec![
        Command::get(plain[5].as_bytes()),
        Command::incr(counters[1].as_bytes(), 2),
        Command::incr(counters[1].as_bytes(), 2),
        Command::Exists(vec![plain[6].as_bytes()]),
        Command::Ttl {
            key: timed[2].as_bytes(),
        },
    ];
    let outcomes = rpc.batch(&ops).unwrap();
    assert!(
        matches!(&outcomes[0], Ok(Outcome::Value(Some(v))) if v == b"p"),
        "{outcomes:?}"
    );
    assert!(matches!(outcomes[1], Ok(Outcome::Int(43))), "{outcomes:?}");
    assert!(matches!(outcomes[2], Ok(Outcome::Int(45))), "{outcomes:?}");
    assert!(matches!(outcomes[3], Ok(Outcome::Int(1))), "{outcomes:?}");
    assert!(
        matches!(outcomes[4], Ok(Outcome::Int(ms)) if ms > 300_000),
        "{outcomes:?}"
    );
    // exists, incr, ttl 2, expire, set nx; batch: get, incr, exists, ttl.
    assert_eq!(handoff_counter(&cluster.nodes[3], "hits"), 10);
    assert_eq!(handoff_counter(&cluster.nodes[3], "errors"), 0);
}

#[test]
fn the_newcomers_own_piece_of_an_rpc_split_hands_off_in_proxy_mode() {
    let proxy = ["--cluster-proxy", "yes"];
    let mut cluster = Cluster::start_with(3, &proxy);
    let client = ClusterClient::new(cluster.urls()).unwrap();
    let mut con = client.get_connection().unwrap();
    let keys: Vec<String> = (0..200).map(|i| format!("k:{i}")).collect();
    for k in &keys {
        let _: () = con.set(k, format!("v-{k}")).unwrap();
    }
    cluster.join_one_with(&proxy);
    // EXISTS and MGET over keys of every node, on the newcomer: split, its
    // own piece (the moved keys) read from their previous owners first.
    let rpc = Client::connect(format!("127.0.0.1:{}", cluster.nodes[3].rpc_port)).unwrap();
    assert_eq!(rpc.exists(&keys[..100]).unwrap(), 100);
    let values = rpc.mget(&keys).unwrap();
    for (k, v) in keys.iter().zip(&values) {
        assert_eq!(v.as_deref(), Some(format!("v-{k}").as_bytes()), "{k}");
    }
    let moved: u64 = redis::cmd("DBSIZE")
        .query(&mut cluster.nodes[3].client())
        .unwrap();
    assert!(moved > 20, "{moved} keys moved");
    assert_eq!(handoff_counter(&cluster.nodes[3], "hits"), moved);
}

#[test]
fn a_batch_that_also_forwards_hands_off_its_local_operations_in_proxy_mode() {
    let proxy = ["--cluster-proxy", "yes"];
    let mut cluster = Cluster::start_with(3, &proxy);
    let client = ClusterClient::new(cluster.urls()).unwrap();
    let mut con = client.get_connection().unwrap();
    for i in 0..300 {
        let _: () = con.set(format!("b:{i}"), format!("v{i}")).unwrap();
        let _: () = con.set(format!("c:{i}"), 41).unwrap();
    }
    cluster.join_one_with(&proxy);
    let on = |prefix: &str, here: bool| -> Vec<String> {
        (0..300)
            .map(|i| format!("{prefix}:{i}"))
            .filter(|k| (cluster.owner_of(k) == 3) == here)
            .collect()
    };
    let (moved, counters, elsewhere) = (on("b", true), on("c", true), on("b", false));
    assert!(moved.len() > 2 && counters.len() > 1 && !elsewhere.is_empty());
    // On the newcomer: moved keys it owns (read from their previous
    // owners first) mixed with a key another node owns (forwarded).
    let rpc = Client::connect(format!("127.0.0.1:{}", cluster.nodes[3].rpc_port)).unwrap();
    let ops = vec![
        Command::get(moved[0].as_bytes()),
        Command::get(elsewhere[0].as_bytes()),
        Command::incr(counters[0].as_bytes(), 1),
        Command::Exists(vec![moved[1].as_bytes()]),
        Command::get(elsewhere[0].as_bytes()),
    ];
    let outcomes = rpc.batch(&ops).unwrap();
    let value = |k: &str| format!("v{}", &k[2..]).into_bytes();
    assert!(
        matches!(&outcomes[0], Ok(Outcome::Value(Some(v))) if *v == value(&moved[0])),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[1], Ok(Outcome::Value(Some(v))) if *v == value(&elsewhere[0])),
        "{outcomes:?}"
    );
    assert!(matches!(outcomes[2], Ok(Outcome::Int(42))), "{outcomes:?}");
    assert!(matches!(outcomes[3], Ok(Outcome::Int(1))), "{outcomes:?}");
    assert!(
        matches!(&outcomes[4], Ok(Outcome::Value(Some(v))) if *v == value(&elsewhere[0])),
        "{outcomes:?}"
    );
    // get, incr, exists: three keys read through; the forwarded one is not
    // the newcomer's to ask for.
    assert_eq!(handoff_counter(&cluster.nodes[3], "hits"), 3);
    assert_eq!(handoff_counter(&cluster.nodes[3], "errors"), 0);
    assert_eq!(
        held(&cluster, 3, &moved[0]),
        Some(format!("v{}", &moved[0][2..]))
    );
}
