//! `--cluster` and `--mget` against a real Redis Cluster (three
//! redis-server masters): every request reaches the node serving its slot,
//! MGETs of a hash-tagged group come back whole, and -MOVED / -ASK
//! redirects (a slot moved, a slot half-migrated, while the load runs) are
//! followed with no error.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::redis_cluster::RedisCluster;
use common::{loadgen, read_json, run_loadgen, u};

/// Cluster mode from `seed`: one thread of four connections, SET:GET 1:1,
/// then `more`.
fn cluster_load<'a>(seed: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--cluster",
        "-s",
        seed,
        "-t",
        "1",
        "-c",
        "4",
        "--ratio",
        "1:1",
    ];
    args.extend_from_slice(more);
    args
}

#[test]
fn mget_groups_are_served_whole_by_their_node() {
    let cluster = RedisCluster::start(3);
    let seed = cluster.seed();
    let (status, report, out) = run_loadgen(&cluster_load(
        &seed,
        &[
            "-p",
            "8",
            "--keys",
            "400",
            "--mget",
            "4",
            "--prefill",
            "-n",
            "2000",
        ],
    ));
    assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(u(&report, "errors"), 0, "{report}");
    assert_eq!(u(&report, "prefill.errors"), 0, "{report}");
    assert_eq!(report["cluster"]["nodes"].as_array().unwrap().len(), 3);
    let mgets = u(&report, "ops.mget.ok");
    assert!(mgets > 0, "{report}");
    // Every key was prefilled: each MGET found all four of its keys.
    assert_eq!(u(&report, "ops.mget.hits"), mgets * 4, "{report}");
    assert_eq!(u(&report, "ops.mget.misses"), 0, "{report}");
    assert_eq!(u(&report, "cluster.moved") + u(&report, "cluster.ask"), 0);
    // Each node got its share: the keys really were spread over the slots.
    for &port in &cluster.ports {
        let keys: u64 = cluster.cli(port, &["DBSIZE"]).parse().unwrap();
        assert!(keys > 50, "node {port} holds {keys} keys");
    }
}

#[test]
fn moved_and_ask_redirects_are_followed_while_the_load_runs() {
    let cluster = RedisCluster::start(3);
    let (child, json) = sequential_load(&cluster);
    // Freeze the load generator with its slot map, change the cluster under it.
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let moved_slot = cluster.slot("key:0");
    let from = cluster.owner(moved_slot);
    let to = *cluster.ports.iter().find(|&&p| p != from).unwrap();
    cluster.move_slot(moved_slot, to);
    let ask_slot = cluster.slot("key:1");
    assert_ne!(ask_slot, moved_slot);
    let owner = cluster.owner(ask_slot);
    let target = *cluster.ports.iter().find(|&&p| p != owner).unwrap();
    cluster.migrating_empty(ask_slot, target);
    assert!(std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());

    let report = finished_without_errors(child, &json);
    assert!(u(&report, "cluster.ask") >= 1, "{report}");
    // The ASKed writes landed on the importing node.
    let on_target: u64 = cluster
        .cli(
            target,
            &["CLUSTER", "COUNTKEYSINSLOT", &ask_slot.to_string()],
        )
        .parse()
        .unwrap();
    assert!(on_target >= 1, "no key of slot {ask_slot} on {target}");
}

#[test]
fn a_node_that_joins_mid_run_gets_connected_and_served() {
    let mut cluster = RedisCluster::start(3);
    let (child, json) = sequential_load(&cluster);
    // A fourth master joins and takes a slot the load keeps asking for.
    let newcomer = cluster.add_master();
    let slot = cluster.slot("key:0");
    cluster.move_slot(slot, newcomer);
    let served_before: u64 = newcomer_commands(&cluster, newcomer);

    finished_without_errors(child, &json);
    let served = newcomer_commands(&cluster, newcomer) - served_before;
    assert!(served >= 1, "the newcomer served {served} commands");
}

fn newcomer_commands(cluster: &RedisCluster, port: u16) -> u64 {
    let info = cluster.cli(port, &["INFO", "commandstats"]);
    // GETs and SETs only (not the cluster's own commands).
    info.lines()
        .filter(|l| l.starts_with("cmdstat_get:") || l.starts_with("cmdstat_set:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Starts a 10-second open-loop load (sequential keys over 200, so every
/// connection keeps walking the whole key space and any changed slot is
/// asked for again) and returns once it reaches the cluster.
fn sequential_load(cluster: &RedisCluster) -> (std::process::Child, std::path::PathBuf) {
    let seed = cluster.seed();
    let (mut cmd, json) = loadgen(&cluster_load(
        &seed,
        &[
            "-p",
            "4",
            "--keys",
            "200",
            "--key-dist",
            "sequential",
            "--rate",
            "400",
            "--duration",
            "10s",
        ],
    ));
    let before = cluster.commands();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while cluster.commands() < before + 10 {
        assert!(
            Instant::now() < deadline,
            "the load never reached the cluster"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    (child, json)
}

/// Waits for the load to end; its report, after checking it ran with no
/// error and followed at least one -MOVED.
fn finished_without_errors(
    child: std::process::Child,
    json: &std::path::PathBuf,
) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    let report = read_json(json, &out);
    assert!(
        out.status.success(),
        "{}\n{report}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(u(&report, "errors"), 0, "{report}");
    assert!(u(&report, "cluster.moved") >= 1, "{report}");
    report
}
