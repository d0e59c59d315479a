//! Citadel's RPC client: the FlatBuffers front door (`citadel_proto::rpc`,
//! contract in `spec/rpc-contract.md`) from Rust.
//!
//! # Transports
//!
//! An [`Endpoint`] is a TCP address (the server's `--rpc-port`), a Unix
//! socket path (`--rpc-unixsocket`, same host, cheaper) or the shared-memory
//! handshake socket (`--shm-socket`, "shm:/path", same host, cheapest: frames
//! travel through two rings mapped by client and server, with no system
//! call while both sides are busy). All carry the same frames: a 24-byte
//! header and a FlatBuffers body. Internally a transport is a frame
//! sender, a frame receiver and a shutdown switch (`transport` module).
//! Over shared memory a frame must fit in one ring record
//! ([`ClientOptions::shm_ring`]), and a caller waiting for its reply reads
//! the reply ring itself for a few µs before it sleeps (at low
//! concurrency a round trip then costs no system call); the async client
//! does not speak it.
//!
//! # Multiplexing
//!
//! One connection carries any number of requests at once. Each request
//! gets an id; a reader thread (a task in the `AsyncClient`) hands every
//! reply frame to the request with its id, so replies may come in any
//! order: a slow plugin call does not hold back the GETs sent after it. A
//! streamed call (a pipeline) receives PARTIAL frames and then a FINAL
//! one ([`CallStream`]). Pipelining: [`Client::send`] returns a
//! [`PendingReply`] at once, [`Client::batch`] sends many operations in
//! one Batch frame, and a [`Client`] shared by threads pipelines their
//! calls. When a connection ends, everything in flight fails with
//! [`Error::Closed`]; nothing waits forever, and a deadline
//! ([`CallOptions`]) bounds each wait with [`Error::Timeout`].
//!
//! The async API, `AsyncClient` (same methods, `async`), is behind the
//! cargo feature `tokio` (on by default).
//!
//! # Clusters
//!
//! Against a cluster (`cluster-enabled yes`) a node answers a request for
//! a key of another node's slot with [`Error::Moved`] (the slot and the
//! owner's RPC address). A [`ClusterClient`] follows it: it keeps a
//! connection per node and remembers each slot's owner, so a request goes
//! straight to its node after the first redirect; [`AsyncClusterClient`]
//! (feature `tokio`) does the same over async connections. (A node in
//! proxy mode, `cluster-proxy yes`, forwards such requests itself instead.)
//!
//! # Pools and discovery
//!
//! A [`Pool`] spreads calls over N connections, reconnecting the ones
//! that fail. A [`Discovered`] client finds a server by name in the
//! discovery directory (`citadel_proto::discovery`), watches it with
//! inotify, uses the fastest local transport its record offers, falls back
//! to a remote TCP address when the local server goes away, switches back
//! when it returns, and retries idempotent calls once after a transport
//! failure ([`Command::is_idempotent`]); [`Discovered::transport_stats`]
//! counts the switches.
//!
//! ```no_run
//! use citadel_client::{Client, Command, SetOptions};
//!
//! let client = Client::connect("127.0.0.1:7379")?;
//! client.set("user:1", "ada")?;
//! let outcomes = client.batch(&[
//!     Command::get(b"user:1"),
//!     Command::incr(b"visits", 1),
//!     Command::set(b"user:2", b"grace", SetOptions::new().nx()),
//! ])?;
//! for outcome in outcomes {
//!     println!("{:?}", outcome?);
//! }
//! # Ok::<(), citadel_client::Error>(())
//! ```

#[cfg(feature = "tokio")]
mod asynch;
mod client;
mod cluster;
mod command;
mod discovery;
mod error;
mod frame;
mod methods;
mod options;
mod outcome;
mod pending;
mod pool;
mod retry;
mod spin;
mod stream;
mod transport;

#[cfg(test)]
mod tests;

#[cfg(feature = "tokio")]
pub use asynch::{AsyncCallStream, AsyncClient};
pub use citadel_proto::rpc::ErrorCode;
pub use client::{Client, PendingReply};
#[cfg(feature = "tokio")]
pub use cluster::AsyncClusterClient;
pub use cluster::ClusterClient;
pub use command::Command;
pub use discovery::{Discovered, DiscoveryConfig, TransportStats};
pub use error::{Error, ProtocolError, Result};
pub use methods::WithOptions;
pub use options::{CallOptions, ClientOptions, Condition, Hello, SetOptions};
pub use outcome::{Outcome, Partial, ScanPage, StatValue, Ttl, Welcome};
pub use pool::Pool;
pub use stream::CallStream;
pub use transport::Endpoint;
