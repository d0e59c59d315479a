//! Example plugin: answers every request with its payload upper-cased.
//! One source, two placements: the binary (`main.rs`) is started by the
//! server as a process; the `cdylib` (libcitadel_plugin_echo.so) is loaded
//! into the server with `placement = "inline"`. Both run [`run`].
//!
//! Magic payloads for tests and demonstrations:
//! * `CRASH` aborts the process (a poison request: the server restarts the
//!   plugin, which gets the request again; after `max-attempts` deliveries
//!   the SDK skips it and the client gets an error);
//! * `SLEEP <ms>` sleeps that long before answering `SLEPT <ms>` (a slow
//!   origin, for timeouts and backpressure);
//! * `PANIC` panics in the handler (the SDK answers that call with a
//!   handler-failed error and keeps serving, in a process and inline);
//! * `WHO` answers `<version>/<instance>` (which process served it: the
//!   `[[plugin]]` version and instance index the server set).
//!
//! Environment (set per plugin or per version in `[[plugin]]`'s `env`):
//! * `ECHO_FAIL=1`: every request gets an error reply (a broken version);
//! * `ECHO_DELAY_US=<n>`: every request takes at least n µs;
//! * `ECHO_SLOW_INSTANCE=<i>` (with `ECHO_SLOW_FACTOR`, default 10): the
//!   instance with that index is that many times slower (balancing bench).

use std::time::Duration;

use citadel_plugin::{Context, Reply, ServeError, ENV_INSTANCE, ENV_VERSION};

citadel_plugin::export_inline!(run);

/// What this process does besides echoing, from its environment.
struct Behaviour {
    fail: bool,
    delay: Duration,
    who: String,
}

impl Behaviour {
    fn new(ctx: &Context) -> Behaviour {
        let var = |k: &str| ctx.var(k);
        let num = |k: &str| var(k).and_then(|v| v.trim().parse::<u64>().ok());
        let instance = var(ENV_INSTANCE).unwrap_or_else(|| "0".into());
        let mut delay_us = num("ECHO_DELAY_US").unwrap_or(0);
        if var("ECHO_SLOW_INSTANCE").is_some_and(|i| i.trim() == instance) {
            delay_us *= num("ECHO_SLOW_FACTOR").unwrap_or(10);
        }
        Behaviour {
            fail: var("ECHO_FAIL").is_some_and(|v| v == "1"),
            delay: Duration::from_micros(delay_us),
            who: format!(
                "{}/{instance}",
                var(ENV_VERSION).unwrap_or_else(|| "default".into())
            ),
        }
    }
}

/// The plugin, for both placements.
pub fn run(ctx: Context) -> Result<(), ServeError> {
    let behaviour = Behaviour::new(&ctx);
    ctx.serve(|req| answer(&behaviour, req.payload))
}

fn answer(b: &Behaviour, payload: &[u8]) -> Reply {
    if payload == b"CRASH" {
        // Inline, this takes the whole server down: what inline gives up.
        eprintln!("citadel-plugin-echo: CRASH requested; aborting");
        std::process::abort();
    }
    if payload == b"PANIC" {
        panic!("PANIC requested");
    }
    if payload == b"WHO" {
        return b.who.as_str().into();
    }
    if b.fail {
        return Reply::error(1, "this version is broken (ECHO_FAIL=1)");
    }
    if let Some(ms) = payload
        .strip_prefix(b"SLEEP ")
        .and_then(|n| std::str::from_utf8(n).ok())
        .and_then(|n| n.trim().parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
        return format!("SLEPT {ms}").into();
    }
    if !b.delay.is_zero() {
        std::thread::sleep(b.delay);
    }
    payload.to_ascii_uppercase().into()
}
