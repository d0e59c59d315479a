//! Logs of a plugin process: `tracing` to stderr (the server collects it),
//! filtered by `RUST_LOG` (default `info`), colours only on a terminal.

use std::io::IsTerminal;

/// Installs the stderr subscriber (once; later calls do nothing).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
}
