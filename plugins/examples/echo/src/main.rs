//! Example plugin: answers every request with its payload upper-cased.
//! Started by the server (see `citadel_plugin` for the environment it reads).
//!
//! Two magic payloads exist for tests and demonstrations:
//! * `CRASH` aborts the process (a poison request: the server restarts the
//!   plugin, which gets the request again; after `max-attempts` deliveries
//!   the SDK skips it and the client gets an error);
//! * `SLEEP <ms>` sleeps that long before answering `SLEPT <ms>` (a slow
//!   origin, for timeouts and backpressure).

use std::time::Duration;

fn main() {
    if let Err(e) = citadel_plugin::serve(|req| answer(req.payload)) {
        eprintln!("citadel-plugin-echo: {e}");
        std::process::exit(1);
    }
}

fn answer(payload: &[u8]) -> Vec<u8> {
    if payload == b"CRASH" {
        eprintln!("citadel-plugin-echo: CRASH requested; aborting");
        std::process::abort();
    }
    if let Some(ms) = payload
        .strip_prefix(b"SLEEP ")
        .and_then(|n| std::str::from_utf8(n).ok())
        .and_then(|n| n.trim().parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
        return format!("SLEPT {ms}").into_bytes();
    }
    payload.to_ascii_uppercase()
}
