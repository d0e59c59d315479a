//! Cluster mode: a node that joins mid-run. When a refetched slot map
//! names a node the worker has no socket to, every load connection of
//! this worker opens one to it (blocking, with a short timeout: a join is
//! rare), so requests for the slots it took are sent there instead of
//! failing as "no connected node serves slot".

use std::net::SocketAddr;
use std::time::Duration;

use super::super::cluster::SlotMap;
use super::super::conn::Conn;
use super::super::transport::Endpoint;
use super::Worker;
use crate::protocol::Protocol;
use crate::workload::Generator;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A worker in cluster mode: the first slot map, how many redirects a
/// request follows, and how to join nodes.
pub struct ClusterSetup {
    pub map: SlotMap,
    pub max_redirects: u8,
    pub joiner: Joiner,
}

/// What a new socket is made with (as `connect_all` and `worker_main` make
/// the first ones).
#[derive(Debug, Clone, Copy)]
pub struct Joiner {
    /// Load connections over all threads (a generator's stride).
    pub total: u64,
    /// The largest request, for the socket's buffers.
    pub max_request: usize,
}

impl<P: Protocol> Worker<'_, P> {
    /// Takes a refetched map: sockets to any node that joined, then the
    /// map's owners (for the nodes there are sockets to).
    pub(super) fn refresh_map(&mut self, fresh: &SlotMap) {
        let (Some(map), Some(joiner)) = (&self.cluster, self.joiner) else {
            return;
        };
        for addr in map.newcomers(fresh) {
            if self.connect_node(addr, joiner) {
                if let Some(map) = &mut self.cluster {
                    map.add_node(addr);
                }
            }
        }
        if let Some(map) = &mut self.cluster {
            map.refresh(fresh);
        }
    }

    /// Opens a socket to `addr` for every load connection; false (and
    /// nothing changed) when it cannot be reached.
    fn connect_node(&mut self, addr: SocketAddr, joiner: Joiner) -> bool {
        let endpoint = Endpoint::Tcp(addr);
        let leads: Vec<usize> = (0..self.conns.len())
            .filter(|&i| self.conns[i].lead)
            .collect();
        let mut socks = Vec::with_capacity(leads.len());
        for _ in &leads {
            match endpoint.connect(CONNECT_TIMEOUT) {
                Ok(sock) => socks.push(sock),
                Err(e) => {
                    tracing::warn!("a node joined at {addr}, but connecting to it failed: {e}");
                    return false;
                }
            }
        }
        tracing::info!(%addr, "a node joined: connected to it");
        for (lead, sock) in leads.into_iter().zip(socks) {
            let node = self.sockets[lead].len();
            let global = self.conns[lead].global;
            let gen = Generator::mix(self.args, global, joiner.total);
            let pipeline = self.args.pipeline;
            let max_request = joiner.max_request;
            let mut c = Conn::new(
                global,
                node,
                endpoint.clone(),
                sock,
                gen,
                pipeline,
                max_request,
            );
            // Only a lead generates requests; the others carry what it routes.
            c.exhausted = true;
            self.sockets[lead].push(self.conns.len());
            self.lead_of.push(lead);
            self.conns.push(c);
        }
        true
    }
}
