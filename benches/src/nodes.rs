//! Citadel cluster nodes for the cluster benchmarks (`proxy-mget`,
//! `handoff-hitrate`): real `citadel` processes on free ports with static
//! membership, `--threads 1` each, killed on drop.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Node {
    pub port: u16,
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary: `$CITADEL`, or `citadel` next to the running one.
pub fn citadel() -> PathBuf {
    if let Some(path) = std::env::var_os("CITADEL") {
        return path.into();
    }
    let me = std::env::current_exe().expect("own path");
    me.with_file_name("citadel")
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("bound").port()
}

/// `cluster-nodes` for these ports.
pub fn node_list(ports: &[u16]) -> String {
    let list: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    list.join(",")
}

/// Starts a cluster node on `port` with member list `list` and `extra`
/// flags (its files under `dir`), and waits until it accepts connections.
pub fn start_node(port: u16, list: &str, extra: &[&str], dir: &Path) -> Node {
    let port_s = port.to_string();
    let cache = dir.join(format!("cache-{port}"));
    let discovery = dir.join(format!("discovery-{port}"));
    let child = Command::new(citadel())
        .args(["--port", &port_s, "--threads", "1", "--maxmemory", "64mb"])
        .args(["--cache-file", cache.to_str().expect("utf-8 path")])
        .args(["--discovery-dir", discovery.to_str().expect("utf-8 path")])
        .args(["--cluster-enabled", "yes", "--cluster-nodes", list])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("citadel starts (build it: cargo build --release -p citadel-server)");
    let node = Node { port, child };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "node {port} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    node
}

/// `n` nodes that know each other, each given `extra` flags.
pub fn start_cluster(n: usize, extra: &[&str], dir: &Path) -> Vec<Node> {
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let list = node_list(&ports);
    ports
        .iter()
        .map(|&port| start_node(port, &list, extra, dir))
        .collect()
}
