//! Citadel, the server itself: a [`command::Session`] per connection
//! running commands against the cache, plugin calls, read-through loads,
//! and the `citadel` binary that wires the layers together.
//!
//! Modules, each depending only on those listed before it:
//!
//! * [`introspect`], [`clients`], [`stats`], [`glob`]: command statistics,
//!   the slow log, the latency monitor and CLIENT PAUSE's state; the
//!   connected-clients registry, per-thread counters, Redis's glob matching;
//! * [`acl`]: ACL users, their rules and permission tests, the ACL LOG and
//!   file (the command catalog it names is handed down by `command`);
//! * [`overload`]: overload protection's rules, per-core admission control
//!   and shed counters;
//! * [`cluster`]: this server as a cluster node (its membership source
//!   and the shared slot map, `citadel-cluster`);
//! * [`forward`]: proxy mode's forwarding of requests to other nodes
//!   (worker threads with pooled peer connections);
//! * [`plugin`]: one thread's side of plugin calls (rings, ids, deadlines);
//! * [`readthrough`]: `[[keyspace]]` loading through loader plugins;
//! * [`pipeline`]: pipeline calls: result keys, single flight, settling;
//! * [`wait`]: the one way a connection waits: typed completions, the
//!   parked table, the per-thread inboxes;
//! * [`pubsub`]: the channels and patterns subscribed on every thread;
//!   [`monitor`]: the connections in MONITOR mode and their lines;
//! * [`tracking`]: client-side caching (CLIENT TRACKING): who cached which
//!   key, and where invalidations go;
//! * [`script`]: Lua scripting and functions (per-thread engines, the
//!   process-wide script store), calling commands through a trait;
//! * [`thread`]: what one core's loop owns, and its per-turn poll;
//! * [`state`]: process-wide state (settings, cache, registries);
//! * [`command`]: sessions, the command table and every command;
//! * [`rpc`]: the FlatBuffers RPC front door's sessions (multiplexed);
//! * [`service`]: the `citadel_net::Service` over sessions; [`signals`];
//!   [`sd_notify`]: systemd's readiness, stopping and watchdog notifications.
//!
//! Below this crate: `citadel-net` (the io_uring loop), `citadel-resp`
//! (the RESP codec), `citadel-cache` (the engine), `citadel-settings`,
//! `citadel-supervisor` (plugin processes), `citadel-cluster` (the slot
//! map) and `citadel-proto` (rings).

pub mod acl;
pub mod blocking;
pub mod clients;
pub mod cluster;
pub mod collection_limits;
pub mod command;
pub mod command_clock;
pub mod forward;
pub mod gate;
pub mod glob;
pub mod hotkeys;
pub mod introspect;
pub mod metrics;
pub mod migrate;
pub mod monitor;
pub mod overload;
pub mod pipeline;
pub mod plugin;
pub mod pubsub;
pub mod readthrough;
pub mod rpc;
pub mod saves;
pub mod script;
pub mod sd_notify;
pub mod service;
pub mod signals;
pub mod state;
pub mod stats;
pub mod thread;
pub mod tracking;
mod tsc_clock;
pub mod wait;

#[cfg(test)]
mod test_alloc;
