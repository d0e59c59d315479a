//! Cluster mode's settings (top-level keys, a part of the server table):
//! whether the node is one of a cluster, where its members come from, and
//! how it announces itself. With `cluster-enabled no` (the default) none
//! of the others matters and the server is a single node, as before.

use crate::setting::positive;
use crate::value::SettingValue;

crate::settings_part! {
    first: 0;

    CLUSTER_ENABLED: YesNo = {
        name: "cluster-enabled",
        value_name: "no|yes",
        default: "no",
        help: "Serve as one node of a Redis Cluster compatible cluster (slots, MOVED)",
        doc: "Cluster mode: the 16,384 hash slots of Redis Cluster are spread over the \
              members (weighted rendezvous hashing, so every node computes the same map), \
              a command on keys of another node's slot is answered -MOVED, and CLUSTER \
              SLOTS/SHARDS/NODES tell cluster clients (redis-cli -c, redis-py \
              RedisCluster) where each slot lives. no: a single node, as before.",
    }
    CLUSTER_MEMBERSHIP: Membership = {
        name: "cluster-membership",
        value_name: "static|etcd|directory",
        default: "static",
        help: "Where the cluster's member list comes from: static (cluster-nodes), etcd, directory",
        doc: "Where the member list comes from: static (the cluster-nodes list; CONFIG SET \
              cluster-nodes changes it live on each node), etcd (members register under \
              cluster-etcd-prefix with a lease) or directory (the discovery directory of \
              one machine).",
    }
    CLUSTER_NODES: ClusterNodes = {
        name: "cluster-nodes",
        value_name: "HOST:PORT[@RPCPORT][=WEIGHT],...",
        help: "Static membership: every member's RESP address, with optional @rpc-port and =weight",
        doc: "The static member list: each member's RESP address (host:port, what clients \
              are redirected to), comma-separated, each with an optional @port of its RPC \
              front door (what RPC clients are redirected to; default: its RESP port plus \
              this node's own rpc-port minus port, i.e. + 1000 with default ports) and an \
              optional =weight (default 1; weight 2 takes about twice the slots). Every \
              node must be given the same list; a node finds itself in it by \
              cluster-announce. Empty: this node alone. CONFIG SET cluster-nodes changes \
              it live (set it on every node). Default: none.",
        example: "127.0.0.1:7001,127.0.0.1:7002@8102,127.0.0.1:7003=2",
        live: true,
    }
    CLUSTER_ANNOUNCE: Option<String> = {
        name: "cluster-announce",
        value_name: "HOST:PORT",
        help: "The address other nodes and clients reach this node at [default: bind:port]",
        doc: "The host:port other members and clients reach this node's RESP listener at \
              (behind NAT or in a container it differs from bind:port). It names the node: \
              its id is derived from it, so it stays the same across restarts. Default: \
              bind:port.",
        example: "10.0.0.5:6379",
        check: |a| match a {
            Some(a) if !is_host_port(a) => Err("expected host:port".into()),
            _ => Ok(()),
        },
    }
    CLUSTER_WEIGHT: u32 = {
        name: "cluster-weight",
        value_name: "N",
        default: "1",
        help: "This node's relative share of the slots, published by etcd/directory membership",
        doc: "This node's relative share of the slots (a machine twice as big: 2), as \
              published to the etcd and directory membership sources. Static membership \
              takes the weights of the cluster-nodes list instead, which every node reads \
              alike.",
        check: positive,
    }
    CLUSTER_ETCD_ENDPOINTS: String = {
        name: "cluster-etcd-endpoints",
        value_name: "URLS",
        default: "http://127.0.0.1:2379",
        help: "etcd membership: the etcd endpoints, comma-separated",
        doc: "etcd membership: the endpoints of the etcd cluster, comma-separated URLs.",
    }
    CLUSTER_ETCD_PREFIX: String = {
        name: "cluster-etcd-prefix",
        value_name: "PREFIX",
        default: "/citadel/",
        help: "etcd membership: the key prefix members register under",
        doc: "etcd membership: the key prefix under which each member registers its record \
              (one key per member, attached to its lease).",
        check: |p| if p.is_empty() { Err("must not be empty".into()) } else { Ok(()) },
    }
    CLUSTER_LEASE_TTL_MS: u64 = {
        name: "cluster-lease-ttl-ms",
        value_name: "MS",
        default: "5000",
        help: "etcd membership: the lease TTL; a node cut off longer stops serving its slots",
        doc: "etcd membership: the TTL of this node's lease. A node that cannot renew it \
              for this long is dropped by the others and stops answering for its slots \
              itself (-CLUSTERDOWN) until it is a member again.",
        check: positive,
    }
    CLUSTER_PROXY: YesNo = {
        name: "cluster-proxy",
        value_name: "no|yes",
        default: "no",
        help: "Forward requests for other nodes' slots and relay the reply, instead of -MOVED",
        doc: "Proxy mode, for clients that do not follow -MOVED: a command whose keys are \
              in one slot of another node is forwarded to that node and its reply relayed \
              unchanged; MGET, MSET, DEL, EXISTS, UNLINK and TOUCH with keys on several \
              nodes are split per node and their replies merged in key order; a \
              transaction (MULTI/EXEC) on one slot of another node is forwarded whole. \
              A node that does not answer within cluster-forward-timeout-ms is answered \
              -CLUSTERDOWN. The nodes of a cluster must share requirepass (peers \
              authenticate with it).",
    }
    CLUSTER_FORWARD_TIMEOUT_MS: u64 = {
        name: "cluster-forward-timeout-ms",
        value_name: "MS",
        default: "2000",
        help: "How long a request to another node (proxy mode, hand-off, broadcast PUBLISH) may wait for its reply",
        doc: "Proxy mode: the deadline of a forwarded request, connecting included. A node \
              that misses it (or refuses the connection) fails the request with \
              -CLUSTERDOWN and is not tried again for as long (its circuit is open), so \
              requests for its slots fail at once meanwhile. The same deadline bounds a \
              warm hand-off's read and a broadcast PUBLISH's copy for another node: a \
              copy past it is dropped (INFO cluster_pubsub_dropped), never holding up \
              PUBLISH.",
        check: positive,
    }
    CLUSTER_HANDOFF: YesNo = {
        name: "cluster-handoff",
        value_name: "yes|no",
        default: "yes",
        help: "Warm hand-off: a key read, missing on a slot that just moved, is first read from its previous owner",
        doc: "Warm hand-off after a membership change: a command that reads a key missing here \
              (any read, a write that reads such as INCR or HSET, EXEC's queue, a script's \
              KEYS) on a slot this node took over within cluster-handoff-ms first asks the \
              slot's previous owner (still a member, which keeps the data until it is \
              evicted) for the key with CLUSTER HANDOFF (its DUMP payload, any type), \
              restores it here with its remaining TTL (unless the key was written here \
              meanwhile), then runs; so the hit rate does not fall by the moved share while \
              the new owner's cache refills. Best effort: a previous owner that fails or \
              misses cluster-forward-timeout-ms makes it a plain miss. A key written (or \
              deleted) here since the change is never read from the previous owner.",
    }
    CLUSTER_HANDOFF_MS: u64 = {
        name: "cluster-handoff-ms",
        value_name: "MS",
        default: "60000",
        help: "Warm hand-off: how long after a map change moved slots are read from their previous owner",
        doc: "Warm hand-off: for how long after a change of the slot map a miss on a moved \
              slot is read through from its previous owner (cluster-handoff). Past it, a \
              miss is a miss.",
        check: positive,
    }
}

/// A yes/no setting given with a value (`--cluster-enabled yes`, as Redis
/// writes it), unlike a bool switch (`--fresh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct YesNo(pub bool);

impl SettingValue for YesNo {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => Ok(YesNo(true)),
            "no" | "false" | "off" | "0" => Ok(YesNo(false)),
            _ => Err("expected yes or no".into()),
        }
    }
    fn render(&self) -> String {
        if self.0 { "yes" } else { "no" }.into()
    }
    /// A TOML boolean, as the switches (`fresh = false`).
    fn toml_literal(text: &str) -> String {
        Self::parse(text).unwrap_or_default().0.to_string()
    }
}

/// Where the member list comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Static,
    Etcd,
    Directory,
}

impl SettingValue for Membership {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "static" => Ok(Membership::Static),
            "etcd" => Ok(Membership::Etcd),
            "directory" => Ok(Membership::Directory),
            _ => Err("expected static, etcd or directory".into()),
        }
    }
    fn render(&self) -> String {
        match self {
            Membership::Static => "static",
            Membership::Etcd => "etcd",
            Membership::Directory => "directory",
        }
        .into()
    }
}

/// One entry of `cluster-nodes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// `host:port` of the member's RESP listener.
    pub addr: String,
    /// The port of its RPC front door (same host), when the list says.
    pub rpc_port: Option<u16>,
    /// ≥ 1.
    pub weight: u32,
}

/// The static member list (`cluster-nodes`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterNodes(pub Vec<NodeEntry>);

impl SettingValue for ClusterNodes {
    /// `host:port[@rpcport][=weight]` entries separated by commas and/or
    /// spaces.
    fn parse(text: &str) -> Result<Self, String> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
            .map(|entry| {
                let (addr, weight) = match entry.split_once('=') {
                    Some((a, w)) => match w.parse::<u32>() {
                        Ok(w) if w >= 1 => (a, w),
                        _ => {
                            return Err(format!("{entry:?}: the weight must be a positive integer"))
                        }
                    },
                    None => (entry, 1),
                };
                let (addr, rpc_port) = match addr.split_once('@') {
                    Some((a, p)) => match p.parse::<u16>() {
                        Ok(p) if p != 0 => (a, Some(p)),
                        _ => return Err(format!("{entry:?}: the RPC port must be 1-65535")),
                    },
                    None => (addr, None),
                };
                if !is_host_port(addr) {
                    return Err(format!("{entry:?}: expected host:port[@rpcport][=weight]"));
                }
                Ok(NodeEntry {
                    addr: addr.to_string(),
                    rpc_port,
                    weight,
                })
            })
            .collect::<Result<_, _>>()
            .map(ClusterNodes)
    }
    fn render(&self) -> String {
        let entries: Vec<String> = self
            .0
            .iter()
            .map(|e| {
                let rpc = e.rpc_port.map(|p| format!("@{p}")).unwrap_or_default();
                match e.weight {
                    1 => format!("{}{rpc}", e.addr),
                    w => format!("{}{rpc}={w}", e.addr),
                }
            })
            .collect();
        entries.join(",")
    }
    /// A string in the text syntax, or an array of
    /// `host:port[@rpcport][=weight]` strings.
    fn from_toml(v: &toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) => Self::parse(s),
            toml::Value::Array(items) => {
                let words: Option<Vec<&str>> = items.iter().map(|i| i.as_str()).collect();
                let words =
                    words.ok_or("expected an array of \"host:port[@rpcport][=weight]\" strings")?;
                Self::parse(&words.join(","))
            }
            other => Err(format!("unexpected {}", other.type_str())),
        }
    }
}

/// `host:port` with a non-empty host and a port in 1-65535.
fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists_parse_with_weights_and_render_back() {
        let nodes = ClusterNodes::parse("127.0.0.1:7001, 127.0.0.1:7002@8002=2").unwrap();
        assert_eq!(
            nodes.0,
            vec![
                NodeEntry {
                    addr: "127.0.0.1:7001".into(),
                    rpc_port: None,
                    weight: 1
                },
                NodeEntry {
                    addr: "127.0.0.1:7002".into(),
                    rpc_port: Some(8002),
                    weight: 2
                },
            ]
        );
        assert_eq!(nodes.render(), "127.0.0.1:7001,127.0.0.1:7002@8002=2");
        assert!(ClusterNodes::parse("127.0.0.1:7001@0").is_err());
        assert!(ClusterNodes::parse("127.0.0.1:7001@x=2").is_err());
        assert_eq!(ClusterNodes::parse("").unwrap().0, vec![]);
        assert!(ClusterNodes::parse("127.0.0.1").is_err());
        assert!(ClusterNodes::parse("127.0.0.1:7001=0").is_err());
        assert!(ClusterNodes::parse("127.0.0.1:70000").is_err());
        let toml: toml::Value =
            toml::from_str::<toml::Table>("n = [\"a:1\", \"b:2=3\"]").unwrap()["n"].clone();
        assert_eq!(
            ClusterNodes::from_toml(&toml).unwrap().render(),
            "a:1,b:2=3"
        );
    }

    #[test]
    fn membership_and_yes_no() {
        assert_eq!(Membership::parse("ETCD"), Ok(Membership::Etcd));
        assert!(Membership::parse("consul").is_err());
        assert_eq!(YesNo::parse("yes"), Ok(YesNo(true)));
        assert_eq!(YesNo(false).render(), "no");
    }
}
