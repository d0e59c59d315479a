//! Warm hand-off (`cluster-handoff`): after a fourth node joins a
//! three-node cluster, a GET of a key whose slot moved to it is read from
//! the slot's previous owner, stored on the newcomer with its remaining
//! TTL, and answered; with the hand-off off the moved keys miss; a dead
//! previous owner makes a plain miss, not an error.

use citadel_tests::clients::info_field;
use citadel_tests::cluster::Cluster;
use citadel_tests::redis::cluster::ClusterClient;
use citadel_tests::redis::{self, Commands};

/// Ten minutes, in ms: the TTL every third key gets.
const TTL_MS: i64 = 600_000;

/// Writes `n` keys through a cluster client (every third with a TTL).
fn write_keys(cluster: &Cluster, n: usize) -> Vec<String> {
    let client = ClusterClient::new(cluster.urls()).unwrap();
    let mut con = client.get_connection().unwrap();
    let keys: Vec<String> = (0..n).map(|i| format!("key:{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        let mut set = redis::cmd("SET");
        set.arg(k).arg(format!("v-{k}"));
        if i % 3 == 0 {
            set.arg("PX").arg(TTL_MS);
        }
        let _: () = set.query(&mut con).unwrap();
    }
    keys
}

fn handoff_counter(node: &citadel_tests::Server, field: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("cluster")
        .query(&mut node.client())
        .unwrap();
    info_field(&info, &format!("cluster_handoff_{field}"))
}

#[test]
fn moved_keys_are_read_from_their_previous_owner_and_stay_warm_on_the_new_one() {
    let mut cluster = Cluster::start(3);
    let keys = write_keys(&cluster, 400);
    let before: Vec<usize> = keys.iter().map(|k| cluster.owner_of(k)).collect();
    cluster.join_one();
    // Keys now on the newcomer; those that were on node 0 are kept unread
    // for the dead-owner case below.
    let moved: Vec<(usize, &String)> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| cluster.owner_of(k) == 3)
        .collect();
    assert!(moved.len() > 40, "{} keys moved", moved.len());
    let (later, now): (Vec<&(usize, &String)>, Vec<_>) =
        moved.iter().partition(|(i, _)| before[*i] == 0);
    assert!(!later.is_empty() && !now.is_empty());

    // Written on the newcomer since the join: never read back from the
    // previous owner (a deleted key stays deleted, a new value stays).
    let mut direct = cluster.nodes[3].client();
    let (deleted, rewritten) = (now[0].1, now[1].1);
    let _: () = direct.del(deleted).unwrap();
    let _: () = direct.set(rewritten, "new").unwrap();

    // A fresh cluster client (the new map) reads every key.
    let client = ClusterClient::new(cluster.urls()).unwrap();
    let mut con = client.get_connection().unwrap();
    for (i, k) in keys.iter().enumerate() {
        if before[i] == 0 && cluster.owner_of(k) == 3 {
            continue;
        }
        let v: Option<String> = con.get(k).unwrap();
        let expected = match k {
            k if k == deleted => None,
            k if k == rewritten => Some("new".to_string()),
            k => Some(format!("v-{k}")),
        };
        assert_eq!(v, expected, "{k}");
    }
    let now = &now[2..];
    assert_eq!(handoff_counter(&cluster.nodes[3], "hits"), now.len() as u64);
    assert_eq!(handoff_counter(&cluster.nodes[3], "errors"), 0);
    // Stored on the newcomer, with the TTL they had.
    let dbsize: usize = redis::cmd("DBSIZE").query(&mut direct).unwrap();
    assert_eq!(dbsize, now.len() + 1);
    for (i, k) in now {
        let pttl: i64 = direct.pttl(k).unwrap();
        if i % 3 == 0 {
            assert!(pttl > TTL_MS - 60_000 && pttl <= TTL_MS, "{k}: {pttl}");
        } else {
            assert_eq!(pttl, -1, "{k}");
        }
    }

    // The previous owners gone, the keys handed off still hit here; the
    // ones not read yet from the dead node are plain misses, no error.
    cluster.nodes[1].kill9();
    cluster.nodes[2].kill9();
    for (_, k) in now {
        let v: Option<String> = direct.get(k).unwrap();
        assert_eq!(v.as_deref(), Some(format!("v-{k}").as_str()), "{k}");
    }
    cluster.nodes[0].kill9();
    for (_, k) in &later {
        let v: Option<String> = direct.get(k).unwrap();
        assert_eq!(v, None, "{k}");
    }
    assert!(handoff_counter(&cluster.nodes[3], "errors") >= 1);
}

#[test]
fn without_handoff_moved_keys_miss() {
    let off = ["--cluster-handoff", "no"];
    let mut cluster = Cluster::start_with(3, &off);
    let keys = write_keys(&cluster, 200);
    cluster.join_one_with(&off);
    let client = ClusterClient::new(cluster.urls()).unwrap();
    let mut con = client.get_connection().unwrap();
    let mut moved = 0;
    for k in &keys {
        let v: Option<String> = con.get(k).unwrap();
        if cluster.owner_of(k) == 3 {
            assert_eq!(v, None, "{k}");
            moved += 1;
        } else {
            assert_eq!(v.as_deref(), Some(format!("v-{k}").as_str()), "{k}");
        }
    }
    assert!(moved > 20, "{moved} keys moved");
    assert_eq!(handoff_counter(&cluster.nodes[3], "hits"), 0);
}

#[test]
fn cluster_handoff_serves_peers_only_and_any_key_it_holds() {
    let cluster = Cluster::start(2);
    let keys = write_keys(&cluster, 20);
    let (k, owner) = keys
        .iter()
        .map(|k| (k, cluster.owner_of(k)))
        .find(|(_, o)| *o == 1)
        .unwrap();
    let mut con = cluster.nodes[owner].client();
    let refused: Result<redis::Value, _> =
        redis::cmd("CLUSTER").arg("HANDOFF").arg(k).query(&mut con);
    let e = refused.unwrap_err().to_string();
    assert!(e.contains("peer nodes"), "{e}");
    let _: () = redis::cmd("CLUSTER")
        .arg("NOPROXY")
        .query(&mut con)
        .unwrap();
    let (value, pttl): (String, i64) = redis::cmd("CLUSTER")
        .arg("HANDOFF")
        .arg(k)
        .query(&mut con)
        .unwrap();
    assert_eq!(value, format!("v-{k}"));
    assert!(pttl == -1 || pttl > TTL_MS - 60_000, "{pttl}");
    // A node that never owned the slot says so (the asker stops asking it).
    let mut other = cluster.nodes[1 - owner].client();
    let _: () = redis::cmd("CLUSTER")
        .arg("NOPROXY")
        .query(&mut other)
        .unwrap();
    let refused: Result<redis::Value, _> = redis::cmd("CLUSTER")
        .arg("HANDOFF")
        .arg(k)
        .query(&mut other);
    assert_eq!(refused.unwrap_err().code(), Some("NOTOWNER"));
}

#[test]
fn a_cold_start_asks_each_peer_at_most_once() {
    // Every node's first view looks like a join (the others served the
    // slots before it came), but they never did: each answers NOTOWNER
    // once, and is not asked again.
    let cluster = Cluster::start(3);
    let client = ClusterClient::new(cluster.urls()).unwrap();
    let mut con = client.get_connection().unwrap();
    for i in 0..300 {
        let v: Option<String> = con.get(format!("absent:{i}")).unwrap();
        assert_eq!(v, None);
    }
    let count = |field| -> u64 {
        cluster
            .nodes
            .iter()
            .map(|n| handoff_counter(n, field))
            .sum()
    };
    assert!(
        count("misses") <= 6,
        "{} hand-offs asked for",
        count("misses")
    );
    assert_eq!(count("errors"), 0);
}

#[test]
fn a_plain_client_in_proxy_mode_gets_moved_keys_handed_off_by_mget_and_get() {
    let proxy = ["--cluster-proxy", "yes"];
    let mut cluster = Cluster::start_with(3, &proxy);
    let keys = write_keys(&cluster, 200);
    cluster.join_one_with(&proxy);
    // One plain connection to node 0: moved keys are forwarded to the
    // newcomer, which hands them off from their previous owners. First one
    // MGET: the newcomer's piece spans many slots and all three previous
    // owners; then each key again, now a hit wherever it lives.
    let mut con = cluster.nodes[0].client();
    // Keys that exist nowhere, among them, stay nil in their places.
    let mut asked: Vec<String> = keys.clone();
    for (at, name) in [(0, "absent:a"), (100, "absent:b"), (202, "absent:c")] {
        asked.insert(at, name.to_string());
    }
    let values: Vec<Option<String>> = con.mget(&asked).unwrap();
    for (k, v) in asked.iter().zip(&values) {
        let expected = (!k.starts_with("absent:")).then(|| format!("v-{k}"));
        assert_eq!(v, &expected, "{k}");
    }
    for k in &keys {
        let v: Option<String> = con.get(k).unwrap();
        assert_eq!(v.as_deref(), Some(format!("v-{k}").as_str()), "{k}");
    }
    // Each moved key is now stored on the newcomer (node 0 forwards, so
    // `owner_of` cannot tell here).
    let moved: u64 = redis::cmd("DBSIZE")
        .query(&mut cluster.nodes[3].client())
        .unwrap();
    assert!(moved > 20, "{moved} keys moved");
    assert_eq!(handoff_counter(&cluster.nodes[3], "hits"), moved);
}

/// An RPC MGET's values (None: not found).
fn rpc_mget(rpc: &mut citadel_tests::rpc::RawRpc, keys: &[&str]) -> Vec<Option<Vec<u8>>> {
    let reply = rpc.call(|w| w.mget(keys.iter().map(|k| k.as_bytes())));
    let values = reply.reply().answer_as_values().expect("Values").values();
    values
        .unwrap()
        .iter()
        .map(|v| v.found().then(|| v.value().unwrap().bytes().to_vec()))
        .collect()
}

#[test]
fn rpc_gets_and_mgets_are_handed_off_too() {
    let mut cluster = Cluster::start(3);
    // Pairs sharing a hash tag (one slot each), so an MGET stays on one node.
    let client = ClusterClient::new(cluster.urls()).unwrap();
    let mut con = client.get_connection().unwrap();
    let tags: Vec<String> = (0..200).map(|i| format!("{{t{i}}}")).collect();
    for t in &tags {
        let _: () = con.set(format!("{t}:a"), format!("a-{t}")).unwrap();
        let _: () = con.set(format!("{t}:b"), format!("b-{t}")).unwrap();
    }
    cluster.join_one();
    let moved: Vec<&String> = tags
        .iter()
        .filter(|t| cluster.owner_of(&format!("{t}:a")) == 3)
        .collect();
    assert!(moved.len() > 10, "{} tags moved", moved.len());
    let mut rpc = citadel_tests::rpc::RawRpc::tcp(cluster.nodes[3].rpc_port);
    // GET: read from the previous owner, answered, and stored here.
    let first = moved[0];
    let a = format!("{first}:a");
    assert_eq!(
        rpc.call(|w| w.get(a.as_bytes())).value(),
        Some(format!("a-{first}").into_bytes())
    );
    let mut direct = cluster.nodes[3].client();
    let _: () = redis::cmd("CLUSTER")
        .arg("NOPROXY")
        .query(&mut direct)
        .unwrap();
    let here: Option<String> = direct.get(&a).unwrap();
    assert_eq!(here, Some(format!("a-{first}")), "stored on the newcomer");
    // MGET: a key found here, one handed off, one nowhere; in order.
    let second = moved[1];
    let _: () = direct.set(format!("{second}:a"), "new").unwrap();
    let keys = [
        format!("{second}:a"),
        format!("{second}:b"),
        format!("{second}:none"),
    ];
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_eq!(
        rpc_mget(&mut rpc, &keys),
        vec![
            Some(b"new".to_vec()),
            Some(format!("b-{second}").into_bytes()),
            None
        ]
    );
    assert_eq!(handoff_counter(&cluster.nodes[3], "hits"), 2);
    assert_eq!(handoff_counter(&cluster.nodes[3], "errors"), 0);
}
