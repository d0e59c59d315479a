//! Hit rate through a node join, with and without warm hand-off
//! (`cluster-handoff`). Three citadel nodes (static membership, `--threads
//! 1` each) are warmed with every key; a client runs a cache-aside
//! workload (GET; on a miss, SET, as an application refilling from its
//! database) with zipf key popularity through the `redis` crate's cluster
//! client; a fourth node joins (started with the grown list, then CONFIG
//! SET cluster-nodes on the others) and the hit rate of each 100 ms after
//! the join is printed, hand-off on and off side by side. `--hash 1`: the
//! same with hashes (HGET; on a miss, HSET), any type being handed off
//! alike. Not a test.
//!
//! `cargo build --release -p citadel-server && cargo run --release -p
//! citadel-benches --bin handoff-hitrate [-- --keys 20000 --zipf 0.99 --secs 3 --hash 0]`
//! Env: CITADEL (the binary; default: next to this one).

use std::time::{Duration, Instant};

use citadel_benches::nodes::{free_port, node_list, start_cluster, start_node, Node};
use redis::cluster::ClusterClient;

const BUCKET: Duration = Duration::from_millis(100);

/// Key ranks drawn with probability ∝ 1 / rank^s.
struct Zipf {
    cdf: Vec<f64>,
    state: u64,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for rank in 1..=n {
            sum += 1.0 / (rank as f64).powf(s);
            cdf.push(sum);
        }
        cdf.iter_mut().for_each(|c| *c /= sum);
        Zipf { cdf, state: 42 }
    }

    fn next(&mut self) -> usize {
        // splitmix64
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let u = ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64;
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

fn key(rank: usize) -> String {
    format!("item:{rank}")
}

/// Hits and requests of each bucket.
type Buckets = Vec<(u64, u64)>;

/// The read of `k` (GET, or HGET of its one field).
fn read(k: &str, hash: bool) -> redis::Cmd {
    let mut cmd = redis::cmd(if hash { "HGET" } else { "GET" });
    cmd.arg(k);
    if hash {
        cmd.arg("f");
    }
    cmd
}

/// The write of `k` (SET, or HSET of its one field).
fn write(k: &str, hash: bool) -> redis::Cmd {
    let mut cmd = redis::cmd(if hash { "HSET" } else { "SET" });
    cmd.arg(k);
    if hash {
        cmd.arg("f");
    }
    cmd.arg(format!("value-of-{k}"));
    cmd
}

/// Runs the cache-aside workload for `secs`, counting per 100 ms.
fn run(
    con: &mut redis::cluster::ClusterConnection,
    zipf: &mut Zipf,
    secs: f64,
    hash: bool,
) -> Buckets {
    let start = Instant::now();
    let until = Duration::from_secs_f64(secs);
    let mut buckets: Buckets = Vec::new();
    while start.elapsed() < until {
        let k = key(zipf.next());
        let got: Option<Vec<u8>> = read(&k, hash).query(con).expect("read");
        if got.is_none() {
            let _: () = write(&k, hash).query(con).expect("write");
        }
        let b = (start.elapsed().as_millis() / BUCKET.as_millis()) as usize;
        if buckets.len() <= b {
            buckets.resize(b + 1, (0, 0));
        }
        buckets[b].0 += u64::from(got.is_some());
        buckets[b].1 += 1;
    }
    buckets
}

/// Warms three nodes, joins a fourth and measures; `handoff`: yes or no.
fn measure(handoff: &str, keys: usize, s: f64, secs: f64, hash: bool) -> (f64, Buckets) {
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = ["--cluster-handoff", handoff];
    let mut nodes: Vec<Node> = start_cluster(3, &extra, dir.path());
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| format!("redis://127.0.0.1:{}/", n.port))
        .collect();
    let client = ClusterClient::new(urls).expect("cluster client");
    let mut con = client.get_connection().expect("connect");
    for rank in 0..keys {
        let _: () = write(&key(rank), hash).query(&mut con).expect("write");
    }
    let mut zipf = Zipf::new(keys, s);
    let before = run(&mut con, &mut zipf, 0.5, hash);
    let before = rate(before.iter().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)));
    // The join: the newcomer starts with the grown list, then the others
    // are told (as an operator would).
    let mut ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    ports.push(free_port());
    let list = node_list(&ports);
    nodes.push(start_node(ports[3], &list, &extra, dir.path()));
    for n in &nodes[..3] {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{}/", n.port))
            .and_then(|c| c.get_connection())
            .expect("connect");
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("cluster-nodes")
            .arg(&list)
            .query(&mut c)
            .expect("CONFIG SET");
    }
    (before, run(&mut con, &mut zipf, secs, hash))
}

fn rate((hits, total): (u64, u64)) -> f64 {
    if total == 0 {
        return f64::NAN;
    }
    100.0 * hits as f64 / total as f64
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let keys = arg("--keys", 20_000.0) as usize;
    let s = arg("--zipf", 0.99);
    let secs = arg("--secs", 3.0);
    let hash = arg("--hash", 0.0) != 0.0;
    let (on_before, on) = measure("yes", keys, s, secs, hash);
    let (off_before, off) = measure("no", keys, s, secs, hash);
    let op = if hash { "HGET" } else { "GET" };
    println!("{keys} keys, zipf s={s}; 3 nodes warmed, a 4th joins at t=0; {op} hit rate (%)");
    println!("before the join: hand-off {on_before:.1}, without {off_before:.1}");
    println!(
        "{:>8} {:>10} {:>8} {:>10} {:>8}",
        "t (ms)", "hand-off", "reads", "without", "reads"
    );
    for b in 0..on.len().max(off.len()) {
        let (a, z) = (on.get(b).copied(), off.get(b).copied());
        let (a, z) = (a.unwrap_or((0, 0)), z.unwrap_or((0, 0)));
        println!(
            "{:>8} {:>10.1} {:>8} {:>10.1} {:>8}",
            b as u128 * BUCKET.as_millis(),
            rate(a),
            a.1,
            rate(z),
            z.1
        );
    }
    let total =
        |v: &Buckets, n: usize| rate(v.iter().take(n).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)));
    for (label, n) in [("first 1 s", 10), ("whole run", usize::MAX)] {
        println!(
            "{label}: hand-off {:.1}%, without {:.1}%",
            total(&on, n),
            total(&off, n)
        );
    }
}
