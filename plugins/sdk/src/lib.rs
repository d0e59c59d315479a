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
//! SIGTERM (or SIGINT) finishes what is in hand, commits it, and returns `Ok`.
//!
//! **One source, two placements.** Write the plugin as an entry function
//! over a [`Context`] and export it with [`export_inline!`]: built with
//! `crate-type = ["cdylib", "rlib"]`, the same code runs as a process
//! (`main` calls `run(Context::process())`) and as a module loaded into the
//! server (`placement = "inline"`; see `plugins/README.md`):
//!
//! ```no_run
//! use citadel_plugin::{Context, ServeError};
//!
//! citadel_plugin::export_inline!(run);
//!
//! pub fn run(ctx: Context) -> Result<(), ServeError> {
//!     ctx.serve(|req| req.payload.to_ascii_uppercase())
//! }
//! ```
//!
//! Handlers that answer later (a database query, a tokio task) use the
//! out-of-order mode: [`serve_out_of_order`] or [`Plugin`]:
//!
//! ```no_run
//! use citadel_plugin::{Options, Plugin, Reply};
//!
//! fn main() -> Result<(), citadel_plugin::ServeError> {
//!     let plugin = Plugin::from_env(Options::default())?;
//!     let notifier = plugin.notifier(); // push invalidations from any thread
//!     plugin.serve_out_of_order(|req, responder| {
//!         let payload = req.payload.to_vec();
//!         std::thread::spawn(move || responder.reply(Reply::ok(payload)));
//!     })
//! }
//! ```

#[doc(hidden)]
pub mod abi;
mod context;
mod engine;
mod handles;
mod load;
mod logging;
mod message;
mod options;
mod plugin;
pub mod stage;
mod stop;

pub use citadel_proto::handshake::{ENV_INSTANCE, ENV_VERSION};
pub use citadel_proto::load as codec;
pub use citadel_proto::{handshake::Handshake, PluginEnd, SpinPolicy};
pub use context::Context;
pub use engine::lane::LaneError;
pub use handles::{Notifier, Responder, Stopper};
pub use logging::init_logging;
pub use message::{Format, Kind, Replies, Reply, Request};
pub use options::{Options, ServeError};
pub use plugin::Plugin;
pub use stage::{EmitError, Emitter};

/// Serves one request at a time: each reply is published and its request
/// committed before the next request is handled.
pub fn serve<F, R>(handler: F) -> Result<(), ServeError>
where
    F: FnMut(&Request<'_>) -> R,
    R: Into<Reply>,
{
    Plugin::from_env(Options::default())?.serve(handler)
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

/// Serves out of order (see [`Plugin::serve_out_of_order`]) on the rings
/// named by the environment.
pub fn serve_out_of_order<F>(handler: F) -> Result<(), ServeError>
where
    F: FnMut(&Request<'_>, Responder),
{
    Plugin::from_env(Options::default())?.serve_out_of_order(handler)
}

/// Attaches to the rings named by the environment (see
/// `citadel_proto::handshake`) and serves in batches until SIGTERM/SIGINT.
pub fn serve_env<F>(options: Options, handler: F) -> Result<(), ServeError>
where
    F: FnMut(&[Request<'_>], &mut Replies),
{
    Plugin::from_env(options)?.serve_batch(handler)
}

/// Serves the given ring pairs in batches until SIGTERM/SIGINT, then
/// finishes the batch in hand, commits it and returns `Ok`.
pub fn serve_ends<F>(ends: Vec<PluginEnd>, options: Options, handler: F) -> Result<(), ServeError>
where
    F: FnMut(&[Request<'_>], &mut Replies),
{
    Plugin::new(ends, options)?.serve_batch(handler)
}
