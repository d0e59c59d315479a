//! The C ABI between the server and an inline plugin module (a `cdylib`
//! built with the SDK's `export_inline!`). Deliberately small: the module
//! exports one static ([`ABI_SYMBOL`], an [`AbiTag`]) and one function
//! ([`SERVE_SYMBOL`], a [`ServeFn`]). The server checks the tag's magic and
//! version before it calls anything, so a module built against another
//! ABI is refused with a clear error instead of being called wrongly.
//!
//! `serve` runs the plugin's ordinary serve loop on the calling thread (a
//! pinned thread of the server) until the stop flag is set and the stop
//! descriptor signalled, over the same ring pairs and records a plugin
//! process gets. Everything the process would read from its environment
//! (the ring handshake, version, instance, `env`) comes as a text block of
//! `KEY=VALUE` lines ([`ServeArgs::environment`]). The descriptors it names
//! are duplicates the module owns (and closes) from then on.

use std::ffi::c_char;
use std::sync::atomic::AtomicBool;

/// "CITADELI" in ASCII: the tag of an inline plugin module.
pub const ABI_MAGIC: u64 = 0x4349_5441_4445_4c49;
/// Bumped on any change to [`AbiTag`], [`ServeArgs`] or [`ServeFn`].
pub const ABI_VERSION: u32 = 1;

/// The exported static's symbol name (NUL-terminated for dlsym).
pub const ABI_SYMBOL: &[u8] = b"CITADEL_INLINE_ABI\0";
/// The exported serve function's symbol name.
pub const SERVE_SYMBOL: &[u8] = b"citadel_inline_serve\0";

/// In the environment block only: the plugin's (or its version's) `args`,
/// joined by [`ARGS_SEPARATOR`] (a process gets them as its argv).
pub const ENV_ARGS: &str = "CITADEL_PLUGIN_ARGS";
/// ASCII unit separator: cannot appear in a TOML-configured argument
/// that means anything on a command line.
pub const ARGS_SEPARATOR: char = '\u{1f}';

/// What a module says it is.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiTag {
    pub magic: u64,
    pub version: u32,
}

impl AbiTag {
    /// The tag of a module built against this crate.
    pub const CURRENT: AbiTag = AbiTag {
        magic: ABI_MAGIC,
        version: ABI_VERSION,
    };
}

/// `serve`'s arguments; every pointer stays valid until `serve` returns.
#[repr(C)]
#[derive(Debug)]
pub struct ServeArgs {
    /// NUL-terminated UTF-8, `KEY=VALUE` lines: the handshake variables of
    /// `citadel_proto::handshake` plus the plugin's configured `env`.
    pub environment: *const c_char,
    /// Set (then `stop_fd` signalled) when the module must finish what it
    /// holds and return.
    pub stop_flag: *const AtomicBool,
    /// An eventfd the module may poll (it does not own it).
    pub stop_fd: i32,
    /// Where the module writes why it failed (NUL-terminated, truncated).
    pub error: *mut c_char,
    pub error_len: usize,
}

/// `serve`'s results.
pub const SERVE_OK: i32 = 0;
/// The serve loop returned an error (text in `error`).
pub const SERVE_FAILED: i32 = 1;
/// The plugin panicked outside a handler call (text in `error`).
pub const SERVE_PANICKED: i32 = 2;

/// The exported function: serves until stopped; never unwinds.
pub type ServeFn = unsafe extern "C" fn(args: *const ServeArgs) -> i32;
