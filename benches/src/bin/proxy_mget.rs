//! MGET of 100 keys spread over 1, 2 and 3 citadel nodes: through proxy
//! mode (a plain connection to one node, which splits the MGET per node
//! and merges the replies) against a client that splits by node itself
//! (CLUSTER SLOTS, one MGET per node sent in parallel) and the `redis`
//! crate's cluster client (which splits MGET per slot). Starts its own
//! nodes on free ports (static membership, `--threads 1` each). Not a
//! test: it prints a table.
//!
//! `cargo build --release -p citadel-server && cargo run --release -p
//! citadel-benches --bin proxy-mget [-- --secs 3 --clients 4]`
//! Env: CITADEL (the binary; default: next to this one).

use std::time::{Duration, Instant};

use citadel_benches::nodes::start_cluster;

use redis::cluster::ClusterClient;

const KEYS: usize = 10_000;
const PER_MGET: usize = 100;

/// The keys of MGET `i` of a client (a deterministic scatter).
fn batch(seed: u64, i: u64) -> Vec<String> {
    let mut x = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..PER_MGET)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("key:{}", x % KEYS as u64)
        })
        .collect()
}

struct Stats {
    ops_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Sends one MGET of `keys`; the number of values back.
trait Mget {
    fn mget(&mut self, keys: &[String]) -> usize;
}

/// One connection answers every MGET: proxy mode's plain connection, or
/// the redis crate's cluster connection (which splits per slot itself).
struct Whole<C>(C);

impl<C: redis::ConnectionLike> Mget for Whole<C> {
    fn mget(&mut self, keys: &[String]) -> usize {
        let got: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(keys)
            .query(&mut self.0)
            .expect("MGET");
        got.len()
    }
}

/// The client splits by node: one connection per node and the slot map
/// (CLUSTER SLOTS); each MGET sends one MGET per node first, then reads
/// the replies and merges them in key order.
struct SplitByNode {
    nodes: Vec<redis::Connection>,
    owner: Vec<usize>,
}

/// A CLUSTER SLOTS entry: start, end, the node (host, port, id, metadata).
type SlotRange = (u16, u16, Vec<redis::Value>);

impl SplitByNode {
    fn connect(ports: &[u16]) -> SplitByNode {
        let mut nodes: Vec<redis::Connection> = ports
            .iter()
            .map(|p| {
                let client = redis::Client::open(format!("redis://127.0.0.1:{p}/")).expect("url");
                client.get_connection().expect("connect")
            })
            .collect();
        let ranges: Vec<SlotRange> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut nodes[0])
            .expect("CLUSTER SLOTS");
        let mut owner = vec![0; 16384];
        for (start, end, node) in ranges {
            let port: u16 = redis::from_redis_value(&node[1]).expect("a port");
            let node = ports.iter().position(|&p| p == port).expect("a known node");
            owner[start as usize..=end as usize].fill(node);
        }
        SplitByNode { nodes, owner }
    }
}

impl Mget for SplitByNode {
    fn mget(&mut self, keys: &[String]) -> usize {
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for (i, k) in keys.iter().enumerate() {
            let slot = citadel_proto::cluster::key_slot(k.as_bytes());
            groups[self.owner[slot as usize]].push(i);
        }
        for (node, group) in groups.iter().enumerate() {
            if !group.is_empty() {
                let mut cmd = redis::cmd("MGET");
                for &i in group {
                    cmd.arg(&keys[i]);
                }
                self.nodes[node]
                    .send_packed_command(&cmd.get_packed_command())
                    .expect("send");
            }
        }
        let mut values: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
        for (node, group) in groups.iter().enumerate() {
            if !group.is_empty() {
                let reply = self.nodes[node].recv_response().expect("reply");
                let got: Vec<Option<Vec<u8>>> = redis::from_redis_value(&reply).expect("values");
                for (&i, v) in group.iter().zip(got) {
                    values[i] = v;
                }
            }
        }
        values.len()
    }
}

/// `clients` threads, each with its own connection from `connect`, send
/// MGETs for `secs` seconds.
fn run<M: Mget>(clients: usize, secs: f64, connect: impl Fn() -> M + Sync) -> Stats {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let mut lat: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let connect = &connect;
                s.spawn(move || {
                    let mut con = connect();
                    let mut lat = Vec::new();
                    let mut i = 0u64;
                    while Instant::now() < until {
                        let keys = batch(c as u64 + 1, i);
                        let t = Instant::now();
                        let got = con.mget(&keys);
                        lat.push(t.elapsed());
                        assert_eq!(got, PER_MGET);
                        i += 1;
                    }
                    lat
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect()
    });
    lat.sort();
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6;
    Stats {
        ops_per_s: lat.len() as f64 / secs,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
    }
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn main() {
    let secs = arg("--secs", 2.0);
    let clients = arg("--clients", 4.0) as usize;
    let dir = tempfile::tempdir_in("/dev/shm").expect("a scratch dir");
    println!("MGET of {PER_MGET} random keys of {KEYS}, {clients} clients, {secs} s each\n");
    println!("| nodes | path | MGET/s | p50 µs | p99 µs |");
    println!("|---:|---|---:|---:|---:|");
    for n in 1..=3 {
        let nodes = start_cluster(n, &["--cluster-proxy", "yes"], dir.path());
        let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
        let url = |p: u16| format!("redis://127.0.0.1:{p}/");
        let plain = redis::Client::open(url(ports[0])).expect("url");
        let mut con = plain.get_connection().expect("connect");
        for chunk in (0..KEYS).collect::<Vec<_>>().chunks(500) {
            let mut cmd = redis::cmd("MSET");
            for k in chunk {
                cmd.arg(format!("key:{k}")).arg(format!("value-{k}"));
            }
            let _: () = cmd.query(&mut con).expect("MSET through the proxy");
        }
        let proxy = run(clients, secs, || {
            Whole(plain.get_connection().expect("connect"))
        });
        let by_node = run(clients, secs, || SplitByNode::connect(&ports));
        let cluster = ClusterClient::new(ports.iter().map(|&p| url(p)).collect::<Vec<_>>())
            .expect("cluster client");
        let per_slot = run(clients, secs, || {
            Whole(cluster.get_connection().expect("cluster connect"))
        });
        for (path, s) in [
            ("proxy: node 0 splits", proxy),
            ("client splits by node", by_node),
            ("redis crate cluster client", per_slot),
        ] {
            println!(
                "| {n} | {path} | {:.0} | {:.0} | {:.0} |",
                s.ops_per_s, s.p50_us, s.p99_us
            );
        }
    }
}
