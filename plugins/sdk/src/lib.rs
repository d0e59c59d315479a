//! Write a Citadel plugin in a few lines:
//!
//! ```no_run
//! fn main() -> Result<(), citadel_plugin::ServeError> {
//!     citadel_plugin::serve(|req| req.payload.to_ascii_uppercase())
//! }
//! ```
//!
//! The server starts the plugin with its rings in the environment
//! (`CITADEL_PLUGIN_RINGS`, `CITADEL_PLUGIN_EVENTFDS`,
//! `CITADEL_PLUGIN_MAX_ATTEMPTS`; see [`citadel_proto::handshake`]). The SDK
//! reads each request in place from the request ring, counts the delivery in
//! ring memory, calls the handler, publishes the reply to the reply ring and
//! then commits the request. A plugin that crashes is restarted by the server
//! and gets its uncommitted requests again; a request delivered more than
//! `max_attempts` times (default 3) is skipped and reported as `Abandoned`.
//! SIGTERM (or SIGINT) finishes the batch in hand, commits it, and returns `Ok`.

mod message;
mod runtime;
mod stop;

pub use citadel_proto::{handshake::Handshake, PluginEnd, SpinPolicy};
pub use message::{Format, Kind, Replies, Reply, Request};
pub use runtime::{serve_ends, serve_env, Options, ServeError};

/// Serves one request at a time: each reply is published and its request
/// committed before the next request is handled.
pub fn serve<F, R>(mut handler: F) -> Result<(), ServeError>
where
    F: FnMut(&Request<'_>) -> R,
    R: Into<Reply>,
{
    let options = Options {
        max_batch: 1,
        ..Options::default()
    };
    serve_env(options, move |reqs, out| {
        for r in reqs {
            out.push(handler(r));
        }
    })
}

/// Serves requests in batches (up to 64, whatever is waiting): push one reply
/// per request into `out`, in order. The batch is committed after its
/// replies are published.
pub fn serve_batch<F>(handler: F) -> Result<(), ServeError>
where
    F: FnMut(&[Request<'_>], &mut Replies),
{
    serve_env(Options::default(), handler)
}
