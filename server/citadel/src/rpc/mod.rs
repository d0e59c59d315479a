//! The FlatBuffers RPC front door (`--rpc-port`, `--rpc-unixsocket`; the
//! protocol is `citadel_proto::rpc`). One [`RpcSession`] per connection:
//! frames are verified and read in place in the receive buffer, replies
//! are built straight into the connection's send buffer.
//!
//! **Many requests in flight, answered out of order.** A RESP connection
//! waits on one operation at a time; an RPC connection multiplexes: each
//! request that must wait (a plugin or pipeline call) is its own typed
//! wait, with the same `WaitKey`/`Completion` and the same inbox as RESP's
//! `Pending`, and the session keeps reading the requests behind it. The
//! loop learns this from `Progress::detached` and hands the session its
//! `Waiter` once; every completion comes back through `Service::resume`
//! and is answered by request id. So a slow call never holds back a GET
//! sent after it on the same connection.
//!
//! ```text
//! frame ─ FrameHeader::parse ─ decode_request (verifier, limits) ─ deadline?
//!   ├─ cache op (get, set, ... batch) ─ reply frame now (ops.rs)
//!   └─ call ─ plugin ring / pipeline flight ─ in_flight[WaitKey] = id
//!        ... Completion ─ resume ─ reply frame for that id (calls.rs)
//! ```
//!
//! In cluster mode each keyed operation is routed first (`route.rs`):
//! another node's slot is answered `Moved` (slot, the owner's RPC
//! address), or in proxy mode forwarded to it as a RESP command and
//! waited for like a call (`forward.rs`, `WaitKey::Forward`); a
//! multi-key operation over several nodes is split and merged
//! (`split.rs`); a batch's operations on other nodes are forwarded
//! together and the batch answered in order (`batch_forward.rs`).

mod admission;
#[cfg(test)]
mod alloc_tests;
mod batch_forward;
mod calls;
mod error;
mod forward;
mod handoff;
mod monitor;
mod ops;
mod route;
mod session;
mod shm_clients;
mod shm_door;
mod split;

pub use error::RpcError;
pub use session::RpcSession;
pub use shm_clients::ShmClients;
pub use shm_door::{ShmDoor, ShmLane};
