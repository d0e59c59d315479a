//! A real Redis Cluster for the loadgen's `--cluster` tests: three
//! `redis-server --cluster-enabled yes` masters on free ports (client and
//! bus ports both chosen free), joined by `redis-cli --cluster create`,
//! stopped and their files removed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, require};

pub struct RedisCluster {
    pub ports: Vec<u16>,
    children: Vec<Child>,
    dir: PathBuf,
}

impl RedisCluster {
    pub fn start(masters: usize) -> RedisCluster {
        let bin = require("redis-server");
        require("redis-cli");
        let dir = std::env::temp_dir().join(format!(
            "loadgen-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = RedisCluster {
            ports: Vec::new(),
            children: Vec::new(),
            dir,
        };
        for _ in 0..masters {
            cluster.spawn(&bin);
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &cluster.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create.arg("--cluster-yes").output().unwrap();
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for &port in &cluster.ports {
            cluster.wait_for(port, &["CLUSTER", "INFO"], "cluster_state:ok");
        }
        cluster
    }

    /// Starts one more `--cluster-enabled` redis-server (not yet in the
    /// cluster); its client and bus ports, once it answers. A port found
    /// free can be taken before the server binds it (another test's
    /// outgoing connection draws its local port from the same range):
    /// the server then exits at once, and is started again on others.
    fn spawn(&mut self, bin: &std::path::Path) -> (u16, u16) {
        for _ in 0..5 {
            let (port, bus) = (free_port(), free_port());
            let mut child = self.server(bin, port, bus);
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                let pong = Command::new("redis-cli")
                    .args(["-p", &port.to_string(), "PING"])
                    .output();
                if matches!(&pong, Ok(o) if o.stdout.starts_with(b"PONG")) {
                    self.children.push(child);
                    self.ports.push(port);
                    return (port, bus);
                }
                assert!(Instant::now() < deadline, "redis-server {port}: no PONG");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server exited at start five times (ports taken?)");
    }

    /// A `--cluster-enabled` redis-server on `port` and `bus`.
    fn server(&self, bin: &std::path::Path, port: u16, bus: u16) -> Child {
        let i = self.ports.len();
        Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus.to_string(),
            ])
            .args(["--cluster-config-file", &format!("nodes-{i}.conf")])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server")
    }

    /// A master joins (CLUSTER MEET), owning no slot yet; its port, once
    /// every node knows it.
    pub fn add_master(&mut self) -> u16 {
        let (port, bus) = self.spawn(&require("redis-server"));
        let (p, b) = (port.to_string(), bus.to_string());
        assert_eq!(
            self.cli(self.ports[0], &["CLUSTER", "MEET", "127.0.0.1", &p, &b]),
            "OK"
        );
        let id = self.id(port);
        for &node in &self.ports {
            self.wait_for(node, &["CLUSTER", "NODES"], &id);
        }
        // It has learnt who serves every slot.
        self.wait_for(port, &["CLUSTER", "INFO"], "cluster_state:ok");
        port
    }

    pub fn seed(&self) -> String {
        format!("127.0.0.1:{}", self.ports[0])
    }

    /// Runs one command on the node at `port` with redis-cli; its output.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn wait_for(&self, port: u16, args: &[&str], want: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new("redis-cli")
                .args(["-p", &port.to_string()])
                .args(args)
                .output();
            if matches!(&out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains(want)) {
                return;
            }
            assert!(Instant::now() < deadline, "node {port}: no {want:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn id(&self, port: u16) -> String {
        self.cli(port, &["CLUSTER", "MYID"])
    }

    pub fn slot(&self, key: &str) -> u16 {
        self.cli(self.ports[0], &["CLUSTER", "KEYSLOT", key])
            .parse()
            .unwrap()
    }

    /// The port of the master serving `slot`, from the nodes' own views.
    pub fn owner(&self, slot: u16) -> u16 {
        for &port in &self.ports {
            let nodes = self.cli(port, &["CLUSTER", "NODES"]);
            let me = nodes.lines().find(|l| l.contains("myself")).unwrap();
            let serves = me.split_whitespace().skip(8).any(|range| {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&slot))
            });
            if serves {
                return port;
            }
        }
        panic!("no master serves slot {slot}");
    }

    /// Total commands the masters processed.
    pub fn commands(&self) -> u64 {
        self.ports
            .iter()
            .map(|&p| {
                let info = self.cli(p, &["INFO", "stats"]);
                info.lines()
                    .find_map(|l| l.strip_prefix("total_commands_processed:"))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap()
            })
            .sum()
    }

    /// Moves `slot` with its keys from its owner to `to`, the way
    /// `redis-cli --cluster reshard` does, and tells every master.
    pub fn move_slot(&self, slot: u16, to: u16) {
        let from = self.owner(slot);
        let (from_id, to_id) = (self.id(from), self.id(to));
        let s = slot.to_string();
        self.cli(to, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &from_id]);
        self.cli(from, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &to_id]);
        let keys = self.cli(from, &["CLUSTER", "GETKEYSINSLOT", &s, "1000"]);
        let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
        if !keys.is_empty() {
            let to_port = to.to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
            args.extend(&keys);
            assert_eq!(self.cli(from, &args), "OK");
        }
        for port in [to, from] {
            self.cli(port, &["CLUSTER", "SETSLOT", &s, "NODE", &to_id]);
        }
        for &port in self.ports.iter().filter(|&&p| p != to && p != from) {
            self.cli(port, &["CLUSTER", "SETSLOT", &s, "NODE", &to_id]);
        }
    }

    /// Leaves `slot` half-migrated from its owner to `to` with none of its
    /// keys at the owner: every request for it is answered `-ASK`.
    pub fn migrating_empty(&self, slot: u16, to: u16) {
        let from = self.owner(slot);
        let s = slot.to_string();
        self.cli(to, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &self.id(from)]);
        self.cli(from, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &self.id(to)]);
        let keys = self.cli(from, &["CLUSTER", "GETKEYSINSLOT", &s, "1000"]);
        for key in keys.lines().filter(|k| !k.is_empty()) {
            self.cli(from, &["DEL", key]);
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
