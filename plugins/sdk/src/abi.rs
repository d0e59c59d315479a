//! The module side of an inline plugin (see `citadel_proto::inline_abi`):
//! [`export_inline!`](crate::export_inline) exports the ABI tag and a serve
//! function that runs the crate's entry function with the server's
//! [`Context`]. Nothing unwinds across `extern "C"`: a panic in a handler
//! is answered as an error by the serve loop, and one anywhere else is
//! caught here and returned as [`SERVE_PANICKED`].

use std::collections::BTreeMap;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use citadel_proto::inline_abi::{AbiTag, ServeArgs, SERVE_FAILED, SERVE_OK, SERVE_PANICKED};

use crate::context::Context;

/// Exports `entry` (a `fn(Context) -> Result<(), E>`, `E: Display`, e.g.
/// [`ServeError`](crate::ServeError)) as an inline
/// plugin module: build the crate with `crate-type = ["cdylib", "rlib"]`
/// and name the `.so` in `[[plugin]]` with `placement = "inline"`.
#[macro_export]
macro_rules! export_inline {
    ($entry:path) => {
        /// The inline ABI tag the server checks before calling anything.
        #[no_mangle]
        pub static CITADEL_INLINE_ABI: $crate::abi::AbiTag = $crate::abi::AbiTag::CURRENT;

        /// Serves the rings in `args` until the server stops it.
        ///
        /// # Safety
        /// `args` must point at `ServeArgs` valid for the whole call, as
        /// `citadel_proto::inline_abi` describes (the server does so).
        #[no_mangle]
        pub unsafe extern "C" fn citadel_inline_serve(args: *const $crate::abi::ServeArgs) -> i32 {
            // SAFETY: this function's own contract, passed on unchanged.
            unsafe { $crate::abi::serve_inline(args, $entry) }
        }
    };
}

/// Runs `entry` with the server's context; never unwinds.
///
/// # Safety
/// `args` must point at `ServeArgs` valid until this returns: a
/// NUL-terminated environment, a live stop flag and stop descriptor, and
/// an error buffer of `error_len` bytes (or null).
pub unsafe fn serve_inline<E: std::fmt::Display>(
    args: *const ServeArgs,
    entry: fn(Context) -> Result<(), E>,
) -> i32 {
    let run = catch_unwind(AssertUnwindSafe(|| {
        crate::logging::init_logging();
        // SAFETY: the caller's contract.
        let args = unsafe { &*args };
        // SAFETY: NUL-terminated and live for the call (the caller's contract).
        let text = unsafe { CStr::from_ptr(args.environment) }.to_string_lossy();
        // SAFETY: the stop flag and descriptor live for the call.
        let ctx =
            unsafe { Context::inline(parse_environment(&text), args.stop_flag, args.stop_fd) };
        entry(ctx)
    }));
    let (code, why) = match run {
        Ok(Ok(())) => return SERVE_OK,
        Ok(Err(e)) => (SERVE_FAILED, e.to_string()),
        Err(panic) => (SERVE_PANICKED, panic_text(panic.as_ref())),
    };
    // SAFETY: the caller's contract (the error buffer may be null).
    unsafe { write_error(&*args, &why) };
    code
}

/// `KEY=VALUE` lines (the first '=' splits; lines without one are skipped).
fn parse_environment(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic".into());
    format!("the plugin panicked: {what}")
}

/// Copies `why` into the server's error buffer, truncated, NUL-terminated.
///
/// # Safety
/// `args.error` is null or points at `args.error_len` writable bytes.
unsafe fn write_error(args: &ServeArgs, why: &str) {
    if args.error.is_null() || args.error_len == 0 {
        return;
    }
    let n = why.len().min(args.error_len - 1);
    // SAFETY: `n + 1 <= error_len` bytes are written into the buffer the
    // caller provides; `why` does not overlap it (it is our own String).
    unsafe {
        std::ptr::copy_nonoverlapping(why.as_ptr(), args.error.cast::<u8>(), n);
        *args.error.add(n) = 0 as c_char;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_lines_split_at_the_first_equals() {
        let env = parse_environment("A=1\nB=x=y\nnoise\n");
        assert_eq!(env.get("A").map(String::as_str), Some("1"));
        assert_eq!(env.get("B").map(String::as_str), Some("x=y"));
        assert_eq!(env.len(), 2);
    }

    #[test]
    fn errors_are_truncated_and_terminated() {
        let mut buf = [0x7f as c_char; 5];
        let args = ServeArgs {
            environment: std::ptr::null(),
            stop_flag: std::ptr::null(),
            stop_fd: -1,
            error: buf.as_mut_ptr(),
            error_len: buf.len(),
        };
        // SAFETY: `buf` is writable for `error_len` bytes.
        unsafe { write_error(&args, "boom: too long") };
        let text = CStr::from_bytes_until_nul(bytemuck_bytes(&buf)).unwrap();
        assert_eq!(text.to_str().unwrap(), "boom");
    }

    fn bytemuck_bytes(buf: &[c_char]) -> &[u8] {
        // SAFETY: c_char and u8 have the same size and alignment.
        unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), buf.len()) }
    }
}
