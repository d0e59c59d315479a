//! Command execution: a [`Session`] per connection parses requests and runs
//! commands against the cache, writing Redis-compatible replies.

mod args;
mod client;
mod config;
mod conn;
mod counters;
mod dispatch;
mod docs;
mod docs_args;
mod error;
mod expiry;
mod glob;
mod info;
mod keys;
mod loading;
mod park;
mod plugin;
mod prefetch;
mod ranges;
mod registry;
mod scan;
mod server;
mod session;
mod strings;
mod table;
mod ttl;
mod value;

#[cfg(test)]
mod alloc_tests;
#[cfg(test)]
mod tests;

pub use error::CmdError;
pub use glob::glob_match;
pub use park::{call_error, Parked, ResumeFn};
pub use registry::{ClientNames, ClientRegistry, ClientShared};
pub use session::{ConnInfo, Progress, Session};
