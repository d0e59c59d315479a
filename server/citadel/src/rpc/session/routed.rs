//! A session's request in cluster mode: run here, forwarded (proxy mode)
//! or refused, by where its keys live (`rpc/route.rs`). Outside cluster
//! mode every request runs here.

use citadel_proto::rpc::{decode_request_with, Body, Op, Request};

use super::{Frame, Merge, RpcSession};
use crate::forward::PartResult;
use crate::rpc::batch_forward::{self, BatchPlan};
use crate::rpc::handoff::{self, RpcHandoff};
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
        (header, body): Frame<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Result<Body, RpcError>> {
        let op = &req.op;
        let handed_off = std::mem::take(&mut self.handed_off);
        if let Op::Batch(batch) = op {
            // Always `Local` for `route::route` (its operations are routed
            // one by one): hand off the ones run here, then forward the
            // others, whether or not any are forwarded.
            if !handed_off {
                self.monitor(thread, op);
                if self.hand_off(thread, req, (header, body)) {
                    return None;
                }
            }
            let started = batch_forward::start(&self.state, thread, header, body, batch);
            if let Some((key, plan)) = started {
                self.wait_for(thread, key, req.id, op.method());
                if let Some(call) = self.in_flight.get_mut(&key) {
                    call.merge = Merge::Batch(plan);
                }
                return None;
            }
            return self.run_here(thread, req, out);
        }
        match route::route(thread, op) {
            Ok(Routed::Local) => {
                if !handed_off {
                    self.monitor(thread, op);
                    if self.hand_off(thread, req, (header, body)) {
                        return None;
                    }
                }
                route::note_write(&self.state, thread, op);
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
                // The local piece's moved keys first (only local slots
                // are asked); the split runs after.
                if !handed_off && self.hand_off(thread, req, (header, body)) {
                    return None;
                }
                match split::start(&self.state, thread, &mut self.writer, op) {
                    Ok(split::Started::Now(body)) => {
                        self.monitor(thread, op);
                        Some(Ok(body))
                    }
                    Ok(split::Started::Waiting(key, plan)) => {
                        self.monitor(thread, op);
                        self.wait_for(thread, key, req.id, op.method());
                        if let Some(call) = self.in_flight.get_mut(&key) {
                            call.merge = Merge::Split(plan);
                        }
                        None
                    }
                    Err(e) => Some(Err(e)),
                }
            }
            Err(e) => Some(Err(e)),
        }
    }

    /// A forwarded batch's answer, in order: each forwarded operation from
    /// its peer's reply, the others run here now.
    pub(super) fn batch_finished(
        &mut self,
        thread: &mut ThreadCtx,
        mut plan: BatchPlan,
    ) -> Result<Body, RpcError> {
        let body = std::mem::take(&mut plan.body);
        let req = decode_request_with(&plan.header, &body, &self.limits)?;
        let Op::Batch(batch) = req.op else {
            return Err(RpcError::Forward("a forwarded batch is no batch".into()));
        };
        for (i, op) in batch.iter().enumerate() {
            let forwarded = match &op {
                Ok(op) => plan.forwarded(&mut self.writer, i, op.method()),
                Err(_) => None,
            };
            let body = match forwarded {
                Some(Ok(body)) => body,
                Some(Err(e)) => e.body(&mut self.writer),
                None => self.batch_op(thread, op),
            };
            self.writer.push_outcome(body);
        }
        Ok(self.writer.batch())
    }

    /// Starts the warm hand-off of `req` (true: it waits, see
    /// `rpc/handoff.rs`).
    fn hand_off(&mut self, thread: &mut ThreadCtx, req: &Request<'_>, frame: Frame<'_>) -> bool {
        let Some((key, wait)) = handoff::start(&self.state, thread, frame, &req.op) else {
            return false;
        };
        self.wait_for(thread, key, req.id, req.op.method());
        if let Some(call) = self.in_flight.get_mut(&key) {
            call.merge = Merge::Handoff(wait);
        }
        true
    }

    /// A request that waited for previous owners: their values restored,
    /// it is routed and run as it came (decoded again from its kept
    /// frame), without a second hand-off; None when its reply frame is
    /// already in `out` (or it waits).
    pub(super) fn handoff_finished(
        &mut self,
        thread: &mut ThreadCtx,
        wait: RpcHandoff,
        results: Vec<PartResult>,
        out: &mut Vec<u8>,
    ) -> Option<Result<Body, RpcError>> {
        handoff::settle(&self.state, thread, &wait, results);
        let req = match decode_request_with(&wait.header, &wait.body, &self.limits) {
            Ok(req) => req,
            Err(e) => return Some(Err(e.into())),
        };
        self.handed_off = true;
        self.route_and_run(thread, &req, (&wait.header, &wait.body), out)
    }

    fn monitor(&self, thread: &ThreadCtx, op: &Op<'_>) {
        if self.state.monitors.active() {
            crate::rpc::monitor::feed(&self.state, thread, &self.client, op);
        }
    }
}
