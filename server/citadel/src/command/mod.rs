//! Command execution: a [`Session`] per connection parses requests and runs
//! commands against the cache, writing Redis-compatible replies.

mod args;
mod client;
mod config;
mod connection;
mod counters;
mod debug;
mod dispatch;
mod docs;
mod error;
mod expiry;
mod generated;
mod glob;
mod info;
mod keys;
mod loading;
mod pending;
mod plugin;
mod prefetch;
mod ranges;
mod scan;
mod server;
mod session;
mod set_options;
mod strings;
mod table;
mod value;

#[cfg(test)]
mod alloc_tests;
#[cfg(test)]
mod tests;

pub use error::CmdError;
pub use glob::glob_match;
pub use pending::{call_error, Pending, ResumeFn};
pub use session::{ConnInfo, Session};
