//! What a plugin's entry function gets, the same for both placements: its
//! settings (environment variables for a process; the server's handshake
//! and the plugin's `env` for an inline module) and the way to attach to
//! its rings. One entry function, `fn(Context) -> Result<(), ServeError>`,
//! serves as a process (`main` calls it with [`Context::process`]) and as
//! an inline module (`export_inline!` passes the server's context).

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::atomic::AtomicBool;

use citadel_proto::handshake::{ENV_EVENTFDS, ENV_MAX_ATTEMPTS, ENV_OUTPUTS, ENV_RINGS};
use citadel_proto::inline_abi::{ARGS_SEPARATOR, ENV_ARGS};
use citadel_proto::Handshake;

use crate::message::{Reply, Request};
use crate::options::{Options, ServeError};
use crate::plugin::Plugin;
use crate::stop::StopSignal;

/// Where the plugin runs and what it was told.
#[derive(Debug)]
pub struct Context {
    inline: Option<Inline>,
}

/// The server's side of an inline serve call.
#[derive(Debug)]
struct Inline {
    vars: BTreeMap<String, String>,
    stop_flag: *const AtomicBool,
    stop_fd: RawFd,
}

impl Context {
    /// A plugin process: everything comes from its environment.
    pub fn process() -> Context {
        Context { inline: None }
    }

    /// An inline serve call's context.
    ///
    /// # Safety
    /// `stop_flag` and `stop_fd` must stay valid until the serve call that
    /// received them returns (the `Context` and every `Plugin` made from it
    /// are used within it).
    pub(crate) unsafe fn inline(
        vars: BTreeMap<String, String>,
        stop_flag: *const AtomicBool,
        stop_fd: RawFd,
    ) -> Context {
        Context {
            inline: Some(Inline {
                vars,
                stop_flag,
                stop_fd,
            }),
        }
    }

    /// True inside the server (an inline module).
    pub fn is_inline(&self) -> bool {
        self.inline.is_some()
    }

    /// "process" or "inline".
    pub fn placement(&self) -> &'static str {
        if self.is_inline() {
            "inline"
        } else {
            "process"
        }
    }

    /// A setting: for an inline plugin the server's handshake and the
    /// plugin's `env` first, then the server process's environment.
    pub fn var(&self, key: &str) -> Option<String> {
        self.inline
            .as_ref()
            .and_then(|i| i.vars.get(key).cloned())
            .or_else(|| std::env::var(key).ok())
    }

    /// The plugin's `args`: a process's command-line arguments (without
    /// the program name), or the configured ones for an inline module.
    pub fn args(&self) -> Vec<String> {
        match &self.inline {
            None => std::env::args().skip(1).collect(),
            Some(i) => i
                .vars
                .get(ENV_ARGS)
                .filter(|a| !a.is_empty())
                .map(|a| a.split(ARGS_SEPARATOR).map(str::to_string).collect())
                .unwrap_or_default(),
        }
    }

    /// Attaches to the rings; `max_attempts` comes from the handshake.
    pub fn plugin(&self, mut options: Options) -> Result<Plugin, ServeError> {
        let Some(inline) = &self.inline else {
            return Plugin::from_env(options);
        };
        let var = |k: &'static str| {
            inline
                .vars
                .get(k)
                .ok_or(citadel_proto::handshake::HandshakeError::Missing(k))
        };
        let max = inline.vars.get(ENV_MAX_ATTEMPTS).map(String::as_str);
        let mut handshake = Handshake::parse(var(ENV_RINGS)?, var(ENV_EVENTFDS)?, max)?;
        if let Some(outputs) = inline.vars.get(ENV_OUTPUTS) {
            handshake.set_outputs(outputs)?;
        }
        options.max_attempts = handshake.max_attempts;
        // SAFETY: the server hands an inline serve call duplicates of every
        // descriptor, for it alone to own (`citadel_proto::inline_abi`).
        let ends = unsafe { handshake.attach_owned() }?;
        // SAFETY: `Context::inline`'s contract: both outlive this call.
        let stop = unsafe { StopSignal::host(inline.stop_flag, inline.stop_fd) }
            .map_err(ServeError::Signals)?;
        Plugin::with_stop(ends, options, stop)
    }

    /// [`Plugin::serve`] with the default options: one request at a time.
    pub fn serve<F, R>(&self, handler: F) -> Result<(), ServeError>
    where
        F: FnMut(&Request<'_>) -> R,
        R: Into<Reply>,
    {
        self.plugin(Options::default())?.serve(handler)
    }
}

// SAFETY: the raw stop flag points at an `AtomicBool` (Sync) the server
// keeps alive for the serve call; the rest is owned data.
unsafe impl Send for Context {}
