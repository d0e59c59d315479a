//! CLUSTER SLOTS / SHARDS / NODES / INFO / MYID / MYSHARDID / KEYSLOT /
//! COUNTKEYSINSLOT / GETKEYSINSLOT / HELP (and Citadel's NOPROXY,
//! HANDOFF: `handoff_wire.rs`, PUBLISH: `cluster_pubsub.rs`), and READONLY, READWRITE,
//! ASKING, in Redis 7's reply shapes: what cluster clients read to learn
//! where each slot lives. With cluster mode off they answer Redis's
//! "cluster support disabled" error, except KEYSLOT (a pure function).
//!
//! A node is its own shard (no replicas): MYSHARDID is the node id. The
//! slot map of weighted rendezvous hashing is scattered, so SLOTS lists
//! about 16,384·(1 - 1/N) ranges; clients read it once and on changes.

use citadel_cluster::{ThreadView, Topology};
use citadel_proto::cluster::{key_slot, Member, SLOT_COUNT};

use super::args::Args;
use super::context::{reply_lines, Ctx};
use super::error::{CmdError, CmdResult};
use super::table::{keyless, CommandDef, Handler};
use citadel_resp::Reply;

const fn sub(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    since: &'static str,
    summary: &'static str,
    handler: Handler,
) -> CommandDef {
    keyless(name, arity, flags, "cluster", since, summary, handler)
}

const LS: &[&str] = &["loading", "stale"];
const S: &[&str] = &["stale"];

#[rustfmt::skip]
pub static SUBCOMMANDS: &[CommandDef] = &[
    sub("cluster|slots", 2, LS, "3.0.0", "Returns the mapping of cluster slots to nodes.", slots),
    sub("cluster|shards", 2, LS, "7.0.0", "Returns the mapping of cluster slots to shards.", shards),
    sub("cluster|nodes", 2, LS, "3.0.0", "Returns the cluster configuration for a node.", nodes),
    sub("cluster|info", 2, LS, "3.0.0", "Returns information about the state of a node.", info),
    sub("cluster|myid", 2, LS, "3.0.0", "Returns the ID of a node.", myid),
    sub("cluster|myshardid", 2, LS, "7.2.0", "Returns the shard ID of a node.", myid),
    sub("cluster|keyslot", 3, S, "3.0.0", "Returns the hash slot for a key.", keyslot),
    sub("cluster|countkeysinslot", 3, S, "3.0.0", "Returns the number of keys in a hash slot.", countkeysinslot),
    sub("cluster|getkeysinslot", 4, S, "3.0.0", "Returns the key names in a hash slot.", getkeysinslot),
    sub("cluster|help", 2, LS, "5.0.0", "Returns helpful text about the different subcommands.", help),
    sub("cluster|noproxy", 2, LS, "7.0.0", "Citadel: answers this connection -MOVED, never a forwarded reply (proxy mode's peer connections).", noproxy),
    sub("cluster|publish", 4, &["pubsub", "loading", "stale"], "7.0.0", "Citadel, for peer nodes: delivers another member's broadcast PUBLISH to this node's subscribers only (never sent on); returns their number. Refused unless the connection said CLUSTER NOPROXY.", super::pubsub::cluster_publish),
    sub("cluster|handoff", 3, S, "7.0.0", "Citadel, for peer nodes: returns a key's DUMP payload (any type) and remaining TTL in ms ([payload, pttl], pttl -1 without expiry; nil when absent) from this node's cache whoever owns its slot now (warm hand-off); -NOTOWNER if this node owned the slot neither in the map in force nor the one before. Refused unless the connection said CLUSTER NOPROXY.", super::handoff_wire::serve),
];

/// This thread's view of the cluster, or Redis's error when it is off.
fn view<'a>(ctx: &'a mut Ctx<'_>) -> Result<&'a mut ThreadView, CmdError> {
    ctx.thread.cluster.as_mut().ok_or(CmdError::ClusterDisabled)
}

/// `host` and `port` of a member's `host:port` (IPv6 without brackets).
fn host_port(m: &Member) -> (&str, i64) {
    let (host, port) = m.addr.rsplit_once(':').unwrap_or((&m.addr, "0"));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port.parse().unwrap_or(0))
}

/// Port of the member's RPC listener (shown as the "cluster bus" port).
fn rpc_port(m: &Member) -> i64 {
    m.rpc
        .as_deref()
        .and_then(|r| r.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(0)
}

fn slots(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let topology = view(ctx)?.shared().snapshot();
    let map = &topology.map;
    let ranges = map.ranges();
    ctx.out.array(ranges.len());
    for r in ranges {
        let owner = &map.members()[r.owner];
        let (host, port) = host_port(owner);
        ctx.out.array(3);
        ctx.out.int(i64::from(r.start));
        ctx.out.int(i64::from(r.end));
        // ip, port, id, and a map of further endpoints (none), as Redis 7.
        ctx.out.array(4);
        ctx.out.bulk(host.as_bytes());
        ctx.out.int(port);
        ctx.out.bulk(owner.id.as_bytes());
        ctx.out.map(0);
    }
    Ok(())
}

fn shards(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let topology = view(ctx)?.shared().snapshot();
    let map = &topology.map;
    let ranges = map.ranges();
    ctx.out.array(map.members().len());
    for (i, m) in map.members().iter().enumerate() {
        let mine: Vec<_> = ranges.iter().filter(|r| r.owner == i).collect();
        ctx.out.map(2);
        ctx.out.bulk(b"slots");
        ctx.out.array(mine.len() * 2);
        for r in mine {
            ctx.out.int(i64::from(r.start));
            ctx.out.int(i64::from(r.end));
        }
        ctx.out.bulk(b"nodes");
        ctx.out.array(1);
        shard_node(
            &mut ctx.out,
            m,
            topology.down.is_none() || Some(i) != topology.me,
        );
    }
    Ok(())
}

fn shard_node(out: &mut Reply<'_>, m: &Member, online: bool) {
    let (host, port) = host_port(m);
    out.map(7);
    out.bulk(b"id");
    out.bulk(m.id.as_bytes());
    out.bulk(b"port");
    out.int(port);
    out.bulk(b"ip");
    out.bulk(host.as_bytes());
    out.bulk(b"endpoint");
    out.bulk(host.as_bytes());
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"replication-offset");
    out.int(0);
    out.bulk(b"health");
    out.bulk(if online {
        b"online" as &[u8]
    } else {
        b"failed"
    });
}

fn nodes(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let topology = view(ctx)?.shared().snapshot();
    let text = nodes_text(&topology, ctx.thread.cache.now_ms());
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// CLUSTER NODES: one line per member, `id addr@cport flags master
/// ping-sent pong-recv epoch link-state slot...`.
fn nodes_text(topology: &Topology, now_ms: u64) -> String {
    let map = &topology.map;
    let ranges = map.ranges();
    let mut text = String::new();
    for (i, m) in map.members().iter().enumerate() {
        let myself = Some(i) == topology.me;
        let mut flags = if myself { "myself,master" } else { "master" }.to_string();
        if myself && topology.down.is_some() {
            flags.push_str(",fail");
        }
        let pong = if myself { 0 } else { now_ms };
        text.push_str(&format!(
            "{} {}@{} {flags} - 0 {pong} {} connected",
            m.id,
            m.addr,
            rpc_port(m),
            map.revision()
        ));
        for r in ranges.iter().filter(|r| r.owner == i) {
            if r.start == r.end {
                text.push_str(&format!(" {}", r.start));
            } else {
                text.push_str(&format!(" {}-{}", r.start, r.end));
            }
        }
        text.push('\n');
    }
    text
}

fn info(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let topology = view(ctx)?.shared().snapshot();
    let owned = if topology.map.members().is_empty() {
        0
    } else {
        SLOT_COUNT
    };
    let ok = topology.down.is_none() && owned == SLOT_COUNT;
    let members = topology.map.members().len();
    let epoch = topology.map.revision();
    let text = format!(
        "cluster_state:{}\r\ncluster_slots_assigned:{owned}\r\ncluster_slots_ok:{owned}\r\n\
         cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{members}\r\n\
         cluster_size:{members}\r\ncluster_current_epoch:{epoch}\r\ncluster_my_epoch:{epoch}\r\n\
         cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n\
         total_cluster_links_buffer_limit_exceeded:0\r\n",
        if ok { "ok" } else { "fail" }
    );
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// MYID, and MYSHARDID (a node is its own shard).
fn myid(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let id = view(ctx)?.shared().my_id().to_string();
    ctx.out.bulk(id.as_bytes());
    Ok(())
}

fn keyslot(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ctx.out.int(i64::from(key_slot(args.get(2))));
    Ok(())
}

/// A slot argument: an integer in 0..16384.
fn slot_arg(args: Args<'_>, i: usize, invalid: &'static str) -> Result<u16, CmdError> {
    let slot = args.int(i)?;
    u16::try_from(slot)
        .ok()
        .filter(|s| *s < SLOT_COUNT)
        .ok_or(CmdError::Static(invalid))
}

/// COUNTKEYSINSLOT walks the whole cache (O(keys)): the cache indexes keys
/// by their own hash, not by slot. Meant for tools and resharding checks.
fn countkeysinslot(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    view(ctx)?;
    let slot = slot_arg(args, 2, "ERR Invalid slot")?;
    let n = keys_in_slot(ctx, slot, usize::MAX, false);
    ctx.out.int(n as i64);
    Ok(())
}

/// GETKEYSINSLOT walks the cache as COUNTKEYSINSLOT (it stops at `count`).
fn getkeysinslot(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    view(ctx)?;
    const INVALID: &str = "ERR Invalid slot or number of keys";
    let slot = args.int(2)?;
    let count = args.int(3)?;
    let slot = u16::try_from(slot)
        .ok()
        .filter(|s| *s < SLOT_COUNT)
        .ok_or(CmdError::Static(INVALID))?;
    let count = usize::try_from(count).map_err(|_| CmdError::Static(INVALID))?;
    keys_in_slot(ctx, slot, count, true);
    super::scan::reply_collected(ctx);
    Ok(())
}

/// Counts (and with `keep`, gathers into the connection's scratch buffers)
/// up to `limit` keys of `slot`, walking the cache in SCAN order.
fn keys_in_slot(ctx: &mut Ctx<'_>, slot: u16, limit: usize, keep: bool) -> usize {
    let (buf, spans) = (&mut ctx.conn.scratch, &mut ctx.conn.scratch_spans);
    let mut found = 0;
    let mut cursor = 0;
    loop {
        cursor = ctx.thread.cache.scan(cursor, 1024, |item| {
            if found >= limit {
                return;
            }
            let start = buf.len();
            item.key().append_to(buf);
            if key_slot(&buf[start..]) == slot {
                found += 1;
                if keep {
                    spans.push(start..buf.len());
                    return;
                }
            }
            buf.truncate(start);
        });
        if cursor == 0 || found >= limit {
            return found;
        }
    }
}

fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    reply_lines(
        &mut ctx.out,
        &[
            "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "COUNTKEYSINSLOT <slot>",
            "    Return the number of keys in <slot>.",
            "GETKEYSINSLOT <slot> <count>",
            "    Return key names stored by current node in a slot.",
            "INFO",
            "    Return information about the cluster.",
            "KEYSLOT <key>",
            "    Return the hash slot for <key>.",
            "MYID",
            "    Return the node id.",
            "MYSHARDID",
            "    Return the node's shard id.",
            "NODES",
            "    Return cluster configuration seen by node. Output format:",
            "    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
            "SHARDS",
            "    Return information about slot range mappings and the nodes they belong to.",
            "SLOTS",
            "    Return information about slots range mappings. Each range is made of:",
            "    start, end, master and replicas IP addresses, ports and ids",
            "NOPROXY",
            "    Answer this connection -MOVED, never a forwarded reply (proxy mode).",
            "HANDOFF <key>",
            "    For peer nodes (after NOPROXY): [value, pttl] of <key> from this node's cache,",
            "    or nil; NOTOWNER if this node did not own its slot lately (warm hand-off).",
            "PUBLISH <channel> <message>",
            "    For peer nodes (after NOPROXY): deliver a broadcast PUBLISH to this node's",
            "    subscribers only; returns their number.",
            "HELP",
            "    Print this help.",
        ],
    );
    Ok(())
}

/// CLUSTER NOPROXY: this connection is another node's forwarding
/// connection (or a client that follows -MOVED): a request is forwarded
/// at most once, so two nodes with different views never loop.
fn noproxy(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    view(ctx)?;
    ctx.conn.no_proxy = true;
    ctx.out.ok();
    Ok(())
}

/// READONLY, READWRITE: accepted (every node is a primary; reads are
/// served where the slot lives either way).
pub fn readonly(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    view(ctx)?;
    ctx.out.ok();
    Ok(())
}

/// ASKING: accepted (no slot is ever migrating: the map changes at once).
pub fn asking(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    readonly(ctx, args)
}
