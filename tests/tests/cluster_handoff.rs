//! Warm hand-off (`cluster-handoff`): after a fourth node joins a
//! three-node cluster, a command reading a key whose slot moved to it (a
//! GET, a hash, list or sorted-set read, an INCR, GETEX, a transaction, a
//! script) first reads it from the slot's previous owner; it is restored
//! on the newcomer with its remaining TTL and the command runs on it (in
//! proxy mode, the newcomer's own piece of a split MGET too); with
//! the hand-off off the moved keys miss; a dead previous owner makes a
//! plain miss, not an error.

use citadel_tests::clients::info_field;
use citadel_tests::cluster::Cluster;
use citadel_tests::redis::cluster::ClusterClient;
use citadel_tests::redis::{self, Commands, Value};

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

/// One key of each kind, written before the join (`kind:i`, i < 40, on
/// every node), and for each kind the moved ones with their previous owner.
struct Kinds {
    before: Vec<(String, usize)>,
}

impl Kinds {
    const NAMES: [&'static str; 8] = [
        "hash", "list", "zset", "stream", "count", "getex", "multi", "script",
    ];

    fn write(cluster: &Cluster) -> Kinds {
        let client = ClusterClient::new(cluster.urls()).unwrap();
        let mut con = client.get_connection().unwrap();
        let mut before = Vec::new();
        for kind in Kinds::NAMES {
            for i in 0..40 {
                let k = format!("{kind}:{i}");
                let mut cmd = match kind {
                    "hash" => redis::cmd("HSET"),
                    "list" => redis::cmd("RPUSH"),
                    "zset" => redis::cmd("ZADD"),
                    "stream" => redis::cmd("XADD"),
                    _ => redis::cmd("SET"),
                };
                cmd.arg(&k);
                match kind {
                    "hash" => cmd.arg("f1").arg("v1").arg("f2").arg("v2"),
                    "list" => cmd.arg("a").arg("b").arg("c"),
                    "zset" => cmd.arg(1).arg("one").arg(2).arg("two"),
                    "stream" => cmd.arg("1-1").arg("f").arg("v"),
                    "count" => cmd.arg(41).arg("PX").arg(TTL_MS),
                    _ => cmd.arg(format!("v-{k}")),
                };
                let _: Value = cmd.query(&mut con).unwrap();
                before.push((k.clone(), cluster.owner_of(&k)));
            }
        }
        Kinds { before }
    }

    /// The `kind` keys now on node 3, with their previous owner.
    fn moved(&self, cluster: &Cluster, kind: &str) -> Vec<(String, usize)> {
        let moved: Vec<(String, usize)> = (self.before.iter())
            .filter(|(k, _)| k.starts_with(&format!("{kind}:")) && cluster.owner_of(k) == 3)
            .cloned()
            .collect();
        assert!(moved.len() >= 2, "{kind}: {} moved", moved.len());
        moved
    }
}

#[test]
fn reads_of_every_type_writes_that_read_transactions_and_scripts_hand_off() {
    let mut cluster = Cluster::start(3);
    let kinds = Kinds::write(&cluster);
    cluster.join_one();
    let mut con = cluster.nodes[3].client();
    let first = |kind: &str| kinds.moved(&cluster, kind)[0].0.clone();

    let h = first("hash");
    let fields: Vec<(String, String)> = redis::cmd("HGETALL").arg(&h).query(&mut con).unwrap();
    assert_eq!(
        fields,
        [("f1".into(), "v1".into()), ("f2".into(), "v2".into())]
    );
    let l = first("list");
    let items: Vec<String> = con.lrange(&l, 0, -1).unwrap();
    assert_eq!(items, ["a", "b", "c"]);
    let z = first("zset");
    let members: Vec<(String, f64)> = con.zrange_withscores(&z, 0, -1).unwrap();
    assert_eq!(members, [("one".into(), 1.0), ("two".into(), 2.0)]);
    // A stream with a consumer group: a group read is a write that reads.
    let x = first("stream");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&x)
        .arg("g")
        .arg("0")
        .query(&mut con)
        .unwrap();
    let read: Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("c")
        .arg("STREAMS")
        .arg(&x)
        .arg(">")
        .query(&mut con)
        .unwrap();
    assert!(format!("{read:?}").contains("1-1"), "{read:?}");
    // A write that reads: the count goes on from the previous owner's,
    // whose TTL it keeps.
    let n = first("count");
    assert_eq!(con.incr::<_, _, i64>(&n, 1).unwrap(), 42);
    let pttl: i64 = con.pttl(&n).unwrap();
    assert!(pttl > TTL_MS - 60_000 && pttl <= TTL_MS, "{n}: {pttl}");
    let g = first("getex");
    let v: String = redis::cmd("GETEX")
        .arg(&g)
        .arg("EX")
        .arg(100)
        .query(&mut con)
        .unwrap();
    assert_eq!(v, format!("v-{g}"));
    let ttl: i64 = con.ttl(&g).unwrap();
    assert!((1..=100).contains(&ttl), "{g}: {ttl}");
    let m = first("multi");
    let (value, len): (String, usize) = redis::pipe()
        .atomic()
        .get(&m)
        .append(&m, "!")
        .query(&mut con)
        .unwrap();
    assert_eq!((value, len), (format!("v-{m}"), format!("v-{m}!").len()));
    let s = first("script");
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return redis.call('GET', KEYS[1])")
        .query(&mut con)
        .unwrap();
    let v: String = redis::cmd("EVALSHA")
        .arg(&sha)
        .arg(1)
        .arg(&s)
        .query(&mut con)
        .unwrap();
    assert_eq!(v, format!("v-{s}"));
    assert_eq!(handoff_counter(&cluster.nodes[3], "hits"), 8);

    // Written on the newcomer since the join by a pure overwrite: the old
    // copy never comes back, whatever reads it.
    let (h2, l2) = (
        kinds.moved(&cluster, "hash")[1].0.clone(),
        kinds.moved(&cluster, "list")[1].0.clone(),
    );
    let _: () = con.set(&h2, "a string now").unwrap();
    let _: () = con.del(&l2).unwrap();
    let kind: String = redis::cmd("TYPE").arg(&h2).query(&mut con).unwrap();
    assert_eq!(kind, "string");
    let v: String = con.get(&h2).unwrap();
    assert_eq!(v, "a string now");
    let items: Vec<String> = con.lrange(&l2, 0, -1).unwrap();
    assert!(items.is_empty());
    assert!(!con.exists::<_, bool>(&l2).unwrap());
    assert_eq!(handoff_counter(&cluster.nodes[3], "hits"), 8);

    // A dead previous owner: its moved keys read as missing, no error.
    let (z3, owner) = kinds.moved(&cluster, "zset")[1].clone();
    cluster.nodes[owner].kill9();
    let members: Vec<String> = con.zrange(&z3, 0, -1).unwrap();
    assert!(members.is_empty());
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
    let (payload, pttl): (Vec<u8>, i64) = redis::cmd("CLUSTER")
        .arg("HANDOFF")
        .arg(k)
        .query(&mut con)
        .unwrap();
    // DUMP's payload: RESTORE makes the key again.
    let dumped: Vec<u8> = redis::cmd("DUMP").arg(k).query(&mut con).unwrap();
    assert_eq!(payload, dumped);
    let copy = format!("{k}:copy");
    let _: () = redis::cmd("RESTORE")
        .arg(&copy)
        .arg(0)
        .arg(&payload)
        .query(&mut cluster.nodes[cluster.owner_of(&copy)].client())
        .unwrap();
    let value: String = redis::cmd("GET")
        .arg(&copy)
        .query(&mut cluster.nodes[cluster.owner_of(&copy)].client())
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

#[test]
fn the_newcomers_own_piece_of_a_proxy_split_hands_off_too() {
    let proxy = ["--cluster-proxy", "yes"];
    let mut cluster = Cluster::start_with(3, &proxy);
    let keys = write_keys(&cluster, 200);
    cluster.join_one_with(&proxy);
    // A plain connection to the newcomer: EXISTS and MGET over every key
    // split; the piece run there (its moved keys) reads them from their
    // previous owners first, the other pieces are forwarded.
    let mut con = cluster.nodes[3].client();
    let half: i64 = con.exists(&keys[..100]).unwrap();
    assert_eq!(half, 100);
    let values: Vec<Option<String>> = con.mget(&keys).unwrap();
    for (k, v) in keys.iter().zip(&values) {
        assert_eq!(v.as_deref(), Some(format!("v-{k}").as_str()), "{k}");
    }
    let moved: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
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
