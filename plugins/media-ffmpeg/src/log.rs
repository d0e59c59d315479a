//! FFmpeg's log lines go to `tracing` (target "ffmpeg") instead of stderr, and the last error
//! line of the current thread is kept to make error messages specific ("moov atom not found").
//!
//! The va_list ABI is only spelled out for x86_64 Linux here; elsewhere FFmpeg keeps its
//! default stderr logger and messages carry FFmpeg's generic error text only.

use std::cell::RefCell;

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Forgets this thread's last FFmpeg error line.
pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|l| l.borrow_mut().take());
}

/// This thread's last FFmpeg error line since [`clear_last_error`], if any.
pub(crate) fn last_error() -> Option<String> {
    LAST_ERROR.with(|l| l.borrow_mut().take())
}

/// Appends the FFmpeg log detail to `msg` when there is one: "msg (detail)".
pub(crate) fn with_detail(msg: String) -> String {
    match last_error() {
        Some(d) if !msg.contains(&d) => format!("{msg} ({d})"),
        _ => msg,
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) fn install() {
    use ffmpeg_next::ffi;
    // SAFETY: sets process-wide FFmpeg logging state; `callback` is thread-safe.
    unsafe {
        ffi::av_log_set_level(ffi::AV_LOG_WARNING);
        ffi::av_log_set_callback(Some(callback));
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub(crate) fn install() {}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
unsafe extern "C" fn callback(
    avcl: *mut std::ffi::c_void,
    level: std::ffi::c_int,
    fmt: *const std::ffi::c_char,
    vl: *mut ffmpeg_next::ffi::__va_list_tag,
) {
    use ffmpeg_next::ffi;
    if level > ffi::AV_LOG_WARNING || fmt.is_null() {
        return;
    }
    let mut line = [0 as std::ffi::c_char; 1024];
    let mut prefix: std::ffi::c_int = 1;
    // SAFETY: FFmpeg passes a valid format and va_list (consumed once, here); the line buffer
    // is ours and NUL-terminated by av_log_format_line2.
    let text = unsafe {
        ffi::av_log_format_line2(
            avcl,
            level,
            fmt,
            vl,
            line.as_mut_ptr(),
            line.len() as _,
            &mut prefix,
        );
        std::ffi::CStr::from_ptr(line.as_ptr())
    };
    let text = text.to_string_lossy();
    let text = text.trim_end();
    if text.is_empty() {
        return;
    }
    // A panicking subscriber must not unwind into C.
    let _ = std::panic::catch_unwind(|| {
        if level <= ffi::AV_LOG_ERROR {
            tracing::debug!(target: "ffmpeg", "{text}");
            // "[mov,mp4,... @ 0x55..] moov atom not found" -> "moov atom not found".
            let bare = match (text.starts_with('['), text.find("] ")) {
                (true, Some(i)) => &text[i + 2..],
                _ => text,
            };
            LAST_ERROR.with(|l| *l.borrow_mut() = Some(bare.to_string()));
        } else {
            tracing::trace!(target: "ffmpeg", "{text}");
        }
    });
}
