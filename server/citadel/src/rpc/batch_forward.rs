//! Proxy mode for batches: the operations of a batch that live on other
//! nodes go to them as their Redis commands, one pipelined part per node
//! in one forwarder job (`crate::forward`), and the batch waits on
//! `WaitKey::Forward`. When the parts are answered the batch is decoded
//! again from its kept frame and answered in order: a forwarded
//! operation from its peer's reply, every other one run here then. So
//! operations on this node's keys run after the forwarded ones, but keep
//! their order among themselves, as each node's do; a batch is never
//! atomic across nodes. Before it is forwarded, its local operations'
//! keys that just moved here are read from their previous owners
//! (`rpc/handoff.rs`), as a purely local batch's are.

use citadel_proto::rpc::{Batch, FrameHeader, ReplyWriter};

use super::forward::{answer, check_one, submit};
use super::monitor::command_of;
use super::route::{self, Routed};
use super::RpcError;
use crate::command::proxy_enabled;
use crate::forward::{encode_command, Part, PartResult};
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::WaitKey;

/// What a forwarded batch waits for.
#[derive(Debug)]
pub struct BatchPlan {
    /// The batch's frame, to decode it again when the answers come.
    pub header: FrameHeader,
    pub body: Vec<u8>,
    /// Per operation: (part, reply index) when forwarded.
    remote: Vec<Option<(usize, usize)>>,
    /// The parts' replies once answered.
    replies: Vec<PartResult>,
}

/// Forwards the operations of `batch` that other nodes own (proxy mode
/// only); None when there are none: the batch runs here as usual (its
/// operations on other nodes answering `Moved` outside proxy mode).
pub fn start(
    state: &ServerState,
    thread: &mut ThreadCtx,
    header: &FrameHeader,
    body: &[u8],
    batch: &Batch<'_>,
) -> Option<(WaitKey, Box<BatchPlan>)> {
    let forwarder = state.forwarder.get().filter(|_| proxy_enabled(state))?;
    let mut parts: Vec<Part> = Vec::new();
    let mut remote = Vec::with_capacity(batch.len());
    for op in batch.iter() {
        let owner = op.ok().and_then(|op| match route::route(thread, &op) {
            Ok(Routed::Elsewhere { resp, .. }) => Some((resp, command_of(&op))),
            _ => None,
        });
        remote.push(owner.map(|(resp, argv)| {
            let at = match parts.iter().position(|p| p.addr == resp) {
                Some(at) => at,
                None => {
                    parts.push(Part {
                        addr: resp,
                        request: Vec::new(),
                        replies: 0,
                        tracked: None,
                    });
                    parts.len() - 1
                }
            };
            let part = &mut parts[at];
            encode_command(
                &mut part.request,
                argv.len(),
                argv.iter().map(Vec::as_slice),
            );
            part.replies += 1;
            (at, part.replies - 1)
        }));
    }
    if parts.is_empty() {
        return None;
    }
    let key = submit(forwarder, thread, parts);
    let plan = BatchPlan {
        header: *header,
        body: body.to_vec(),
        remote,
        replies: Vec::new(),
    };
    Some((key, Box::new(plan)))
}

impl BatchPlan {
    /// Takes the parts' replies (the job's completion).
    pub fn answered(&mut self, replies: Vec<PartResult>) {
        self.replies = replies;
    }

    /// The answer of operation `i` if it was forwarded (None: it runs
    /// here), built from its peer's reply.
    pub fn forwarded(
        &mut self,
        writer: &mut ReplyWriter,
        i: usize,
        method: citadel_proto::rpc::Method,
    ) -> Option<Result<citadel_proto::rpc::Body, RpcError>> {
        let (part, k) = (*self.remote.get(i)?)?;
        let reply = match self.replies.get_mut(part) {
            Some(Ok(replies)) => match replies.get_mut(k) {
                Some(reply) => check_one(std::mem::take(reply)),
                None => Err(RpcError::Forward("no reply".into())),
            },
            Some(Err(e)) => Err(RpcError::Forward(e.to_string())),
            None => Err(RpcError::Forward("no reply".into())),
        };
        Some(reply.and_then(|reply| answer(writer, method, &reply)))
    }
}
