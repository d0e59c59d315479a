//! Pub/Sub across a cluster, as Redis Cluster does it: PUBLISH reaches
//! subscribers on every node. The node a PUBLISH arrives at delivers it to
//! its own subscribers (the reply counts only those, as Redis's does) and
//! sends `CLUSTER PUBLISH channel message` once to every other member; a
//! member delivers that to its own subscribers only and never sends it on,
//! so a message crosses each link once and cannot loop (Redis sends it
//! over its cluster bus; Citadel over the forwarder's per-peer links).
//!
//! Nobody waits for a broadcast: it goes through
//! `Forwarder::send_unanswered`, which queues it on the peer's link and
//! returns. A dead or stopped peer costs the PUBLISH nothing; its copy is
//! dropped once `cluster-forward-timeout-ms` passes (or at once while the
//! peer's circuit is open) and counted in INFO `cluster_pubsub_dropped`.
//! One link per peer, one writer, one connection: the messages of one
//! publisher reach a remote subscriber in publish order.
//!
//! Not broadcast: SPUBLISH (routed to the channel's slot owner by its key
//! spec, as Redis), keyspace notifications (each node's own, as Redis
//! Cluster), and PUBSUB CHANNELS / NUMSUB / NUMPAT, which count this
//! node's subscribers only (as Redis Cluster's).

use crate::forward::{encode_command, Part};

use super::context::Ctx;

/// Sends a PUBLISH of `payload` on `channel` to every other member (none
/// outside cluster mode). Inside a transaction attempt (a script) it is
/// held with the attempt's mail, sent when the attempt commits.
pub fn broadcast(ctx: &mut Ctx<'_>, channel: &[u8], payload: &[u8]) {
    let Some(view) = ctx.thread.cluster.as_mut() else {
        return;
    };
    let topology = view.current();
    let mut request = Vec::with_capacity(channel.len() + payload.len() + 64);
    let words = [&b"CLUSTER"[..], b"PUBLISH", channel, payload];
    encode_command(&mut request, words.len(), words);
    let parts: Vec<Part> = topology
        .map
        .members()
        .iter()
        .enumerate()
        .filter(|&(i, _)| Some(i) != topology.me)
        .map(|(_, member)| Part {
            addr: member.addr.clone(),
            request: request.clone(),
            replies: 1,
            tracked: None,
        })
        .collect();
    if parts.is_empty() {
        return;
    }
    if ctx.thread.cache.in_txn() {
        ctx.thread.held_broadcasts.push(parts);
    } else if let Some(forwarder) = ctx.state.forwarder.get() {
        forwarder.send_unanswered(parts);
    }
}
