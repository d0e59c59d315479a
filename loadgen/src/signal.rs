//! Ctrl-C / SIGTERM: the first one asks every run to stop (in-flight replies are drained,
//! results reported, servers the harness started are stopped); a second one exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once per process; later calls are no-ops).
pub fn install() {
    let result = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping (Ctrl-C again to exit at once)");
    });
    if let Err(e) = result {
        tracing::debug!("signal handler not installed: {e}");
    }
}

/// Whether a stop was requested.
#[inline]
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}
