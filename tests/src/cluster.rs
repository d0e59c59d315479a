//! A Citadel cluster for the tests: N servers on 127.0.0.1 with static
//! membership (`cluster-nodes`), each killed on drop.

use crate::{free_port, Server};

pub struct Cluster {
    pub nodes: Vec<Server>,
}

/// `cluster-nodes` for these ports: `127.0.0.1:P1,127.0.0.1:P2,...`.
pub fn node_list(ports: &[u16]) -> String {
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    addrs.join(",")
}

impl Cluster {
    /// `n` nodes that know each other.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, &[])
    }

    /// `n` nodes in proxy mode (`--cluster-proxy yes`) plus `extra` flags.
    pub fn start_proxy(n: usize, extra: &[&str]) -> Cluster {
        let mut flags = vec!["--cluster-proxy", "yes"];
        flags.extend_from_slice(extra);
        Cluster::start_with(n, &flags)
    }

    /// `n` nodes that know each other, each also given `extra` flags.
    pub fn start_with(n: usize, extra: &[&str]) -> Cluster {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let list = node_list(&ports);
        let nodes = ports.iter().map(|&p| start_node(p, &list, extra)).collect();
        Cluster { nodes }
    }

    /// `n` nodes whose member list names each one's RPC port
    /// (`host:port@rpcport`: what RPC redirects name), each also given
    /// `extra` flags.
    pub fn start_rpc(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_rpc_each(n, |_| extra.iter().map(|s| s.to_string()).collect())
    }

    /// As [`Cluster::start_rpc`], node `i` given the flags `extra(i)`.
    pub fn start_rpc_each(n: usize, extra: impl Fn(usize) -> Vec<String>) -> Cluster {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let addrs: Vec<String> = ports
            .iter()
            .map(|(p, rpc)| format!("127.0.0.1:{p}@{rpc}"))
            .collect();
        let list = addrs.join(",");
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, &(port, rpc))| {
                let mut flags = vec!["--rpc-port".to_string(), rpc.to_string()];
                flags.extend(extra(i));
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                start_node(port, &list, &flags)
            })
            .collect();
        Cluster { nodes }
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|s| s.port).collect()
    }

    /// `redis://127.0.0.1:P/` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Server::url).collect()
    }

    /// Starts one more node with the grown list, then gives every other
    /// node the list with `CONFIG SET cluster-nodes` (as an operator would).
    pub fn join_one(&mut self) {
        self.join_one_with(&[]);
    }

    /// `join_one`, the newcomer also given `extra` flags.
    pub fn join_one_with(&mut self, extra: &[&str]) {
        let port = free_port();
        let mut ports = self.ports();
        ports.push(port);
        let list = node_list(&ports);
        let node = start_node(port, &list, extra);
        for n in &self.nodes {
            let _: () = crate::redis::cmd("CONFIG")
                .arg("SET")
                .arg("cluster-nodes")
                .arg(&list)
                .query(&mut n.client())
                .unwrap();
        }
        self.nodes.push(node);
    }

    /// The index in `nodes` of the node that owns `key` now, by asking
    /// node 0 (a -MOVED names the owner's port; CLUSTER NOPROXY first, so
    /// a node in proxy mode answers it too).
    pub fn owner_of(&self, key: &str) -> usize {
        let mut con = self.nodes[0].client();
        let _: () = crate::redis::cmd("CLUSTER")
            .arg("NOPROXY")
            .query(&mut con)
            .unwrap();
        // EXISTS: whatever type the key holds.
        let reply: Result<i64, _> = crate::redis::cmd("EXISTS").arg(key).query(&mut con);
        let Err(e) = reply else {
            return 0;
        };
        let port: u16 = e
            .to_string()
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("not a MOVED: {e}"));
        self.nodes.iter().position(|n| n.port == port).unwrap()
    }
}

fn start_node(port: u16, list: &str, extra: &[&str]) -> Server {
    let mut flags = vec!["--cluster-enabled", "yes", "--cluster-nodes", list];
    flags.extend_from_slice(extra);
    Server::start_on(port, &flags)
}
