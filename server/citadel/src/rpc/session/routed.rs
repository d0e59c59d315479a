//! A session's request in cluster mode: run here, forwarded (proxy mode)
//! or refused, by where its keys live (`rpc/route.rs`). Outside cluster
//! mode every request runs here.

use citadel_proto::rpc::{Body, Op, Request};

use super::RpcSession;
use crate::rpc::route::{self, Routed};
use crate::rpc::{forward, split, RpcError};
use crate::thread::ThreadCtx;

impl RpcSession {
    /// Runs `req` where its keys live; None when its reply frame is
    /// already in `out` or it waits. MONITOR shows what runs or is
    /// forwarded, not what is refused (as RESP's).
    pub(super) fn route_and_run(
        &mut self,
        thread: &mut ThreadCtx,
        req: &Request<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Result<Body, RpcError>> {
        let op = &req.op;
        match route::route(&self.state, thread, op) {
            Ok(Routed::Local) => {
                self.monitor(thread, op);
                self.run_here(thread, req, out)
            }
            Ok(Routed::Elsewhere { resp, refusal }) => {
                match forward::start(&self.state, thread, op, resp, refusal) {
                    Ok(key) => {
                        self.monitor(thread, op);
                        self.wait_for(thread, key, req.id, op.method());
                        None
                    }
                    Err(e) => Some(Err(e)),
                }
            }
            Err(RpcError::CrossSlot) if split::splittable(&self.state, op) => {
                match split::start(&self.state, thread, &mut self.writer, op) {
                    Ok(split::Started::Now(body)) => {
                        self.monitor(thread, op);
                        Some(Ok(body))
                    }
                    Ok(split::Started::Waiting(key, plan)) => {
                        self.monitor(thread, op);
                        self.wait_for(thread, key, req.id, op.method());
                        if let Some(call) = self.in_flight.get_mut(&key) {
                            call.split = Some(plan);
                        }
                        None
                    }
                    Err(e) => Some(Err(e)),
                }
            }
            Err(e) => Some(Err(e)),
        }
    }

    fn monitor(&self, thread: &ThreadCtx, op: &Op<'_>) {
        if self.state.monitors.active() {
            crate::rpc::monitor::feed(&self.state, thread, &self.client, op);
        }
    }
}
