//! Command execution: a [`Session`] per connection parses requests and runs
//! commands against the cache, writing Redis-compatible replies.

mod acl;
mod acl_check;
mod acl_keys;
mod admission;
mod args;
mod bitfield;
mod bitop;
mod bits;
mod blocking;
pub(crate) mod busy_door;
pub(crate) mod busy_greeting;
mod busy_tx;
mod client;
mod cluster;
mod cluster_pubsub;
mod collections;
mod config;
mod connection;
mod context;
mod counters;
mod databases;
mod debug;
mod dispatch;
mod doc_arg;
mod docs;
mod dump;
mod error;
mod expiry;
mod fast_path;
mod function_stats;
mod functions;
mod generated;
mod handoff;
mod handoff_keys;
mod handoff_wire;
mod hll;
mod hotkeys;
mod info;
mod info_spec;
mod key_events;
mod key_flags;
mod keys;
mod latency;
mod latency_graph;
mod lcs;
mod load_plan;
mod loading;
mod lolwut;
mod memory;
mod migrate;
mod migrate_plan;
mod monitor;
mod nested_calls;
mod object;
mod observe;
mod overload_info;
mod pause_gate;
mod pending;
mod pipeline;
mod pipeline_info;
mod plugin;
mod plugin_versions;
mod prefetch;
mod proxy;
mod proxy_merge;
mod pubsub;
mod queue;
mod ranges;
mod rdb_value;
mod redirect;
mod replication;
mod save;
mod scan;
mod script_host;
mod scripting;
mod server;
mod session;
mod set_options;
mod short_name;
mod slowlog;
mod stats_info;
mod strings;
mod table;
mod tracking;
mod transaction;
mod value;
mod write_hold;

#[cfg(test)]
mod alloc_tests;
#[cfg(test)]
pub(crate) mod tests;

pub use crate::command_clock::monotonic_nanos;
pub use crate::glob::glob_match;
pub use acl::load_at_start as load_acl_at_start;
pub use context::{Ctx, Pending, ResumeFn};
pub use counters::add as add_to_integer;
pub use error::CmdError;
pub use handoff::{
    in_window as in_handoff_window, mark_written, replies_by_key as handoff_replies,
    settle_answer as settle_handoff, Asks as HandoffAsks,
};
pub use hotkeys::write_refused;
pub use info::text as info_text;
pub use key_events::flush as flush_key_events;
pub use monitor::feed_line as feed_monitor_line;
pub use pause_gate::{pause_deadline, release_paused};
pub use pending::call_error;
pub use pipeline::{
    start as start_pipeline, Request as PipelineRequest, Started as PipelineStarted,
};
pub use prefetch::{lone_key, prefetch_across};
pub use proxy::enabled as proxy_enabled;
pub use script_host::call as script_call;
pub use scripting::script_keys;
pub use session::{register_client, ConnInfo, Session};
pub use tracking::PeerInvalidations;
pub use value::{get_string, put_value};

/// The name of the command (or `container|subcommand`) at global index
/// `index`, as INFO commandstats names it.
pub fn command_name(index: usize) -> Option<&'static str> {
    table::by_index(index).map(|def| def.name)
}
