//! Command-line flags (each also readable from a `CITADEL_FAKE_*` variable).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// A Citadel loader plugin without a database, for tests and demos: it
/// answers each read-through load (LoadRequest) from the rules below, in
/// this order: --crash-key, `down` in the control file, --unavailable-prefix,
/// --timeout-prefix, --absent-prefix, else the value --value makes of the
/// key. Started by the Citadel server, which passes its rings in
/// CITADEL_PLUGIN_* variables.
#[derive(Clone, Debug, Parser)]
#[command(name = "citadel-fake-loader", version, args_override_self = true)]
pub struct Config {
    /// The value of a key: `{key}` is replaced by the key, `{gen}` by its
    /// generation (0, plus one per `invalidate KEY` and per `resync` in the
    /// control file).
    #[arg(long, env = "CITADEL_FAKE_VALUE", default_value = "value-of-{key}")]
    pub value: String,

    /// TTL sent with every value (0: the keyspace's default).
    #[arg(long, env = "CITADEL_FAKE_TTL_MS", default_value_t = 0)]
    pub ttl_ms: u64,

    /// Keys with this prefix do not exist (LoadReply { found: false }). Repeatable.
    #[arg(long, env = "CITADEL_FAKE_ABSENT_PREFIX", value_delimiter = ',')]
    pub absent_prefix: Vec<String>,

    /// Loads of keys with this prefix fail with OriginUnavailable. Repeatable.
    #[arg(long, env = "CITADEL_FAKE_UNAVAILABLE_PREFIX", value_delimiter = ',')]
    pub unavailable_prefix: Vec<String>,

    /// Loads of keys with this prefix fail with OriginTimeout. Repeatable.
    #[arg(long, env = "CITADEL_FAKE_TIMEOUT_PREFIX", value_delimiter = ',')]
    pub timeout_prefix: Vec<String>,

    /// Every answer is sent this long after the request arrived (from a
    /// timer thread: other loads are not held up).
    #[arg(long, env = "CITADEL_FAKE_DELAY_MS", default_value_t = 0)]
    pub delay_ms: u64,

    /// Keys with this prefix are answered after --slow-ms instead. Repeatable.
    #[arg(long, env = "CITADEL_FAKE_SLOW_PREFIX", value_delimiter = ',')]
    pub slow_prefix: Vec<String>,

    /// The delay of keys with a --slow-prefix.
    #[arg(long, env = "CITADEL_FAKE_SLOW_MS", default_value_t = 10_000)]
    pub slow_ms: u64,

    /// Loading this key aborts the process (a poison request).
    #[arg(long, env = "CITADEL_FAKE_CRASH_KEY")]
    pub crash_key: Option<String>,

    /// A file of commands, one a line, read as lines are appended:
    /// `invalidate KEY` (the key's generation goes up and the server is told
    /// to drop it), `resync` (every generation goes up; a resync record),
    /// `down` (every load fails with OriginUnavailable), `up`.
    #[arg(long, env = "CITADEL_FAKE_CONTROL")]
    pub control: Option<PathBuf>,

    /// How often the control file is read.
    #[arg(long, env = "CITADEL_FAKE_CONTROL_POLL_MS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub control_poll_ms: u64,

    /// Appends each key it answers a load of, one line each (as the answer
    /// is sent), so tests can count loads.
    #[arg(long, env = "CITADEL_FAKE_SERVED_LOG")]
    pub served_log: Option<PathBuf>,
}

impl Config {
    pub fn delay_for(&self, key: &[u8]) -> Duration {
        let slow = self
            .slow_prefix
            .iter()
            .any(|p| key.starts_with(p.as_bytes()));
        Duration::from_millis(if slow { self.slow_ms } else { self.delay_ms })
    }

    pub fn control_poll(&self) -> Duration {
        Duration::from_millis(self.control_poll_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_with_defaults_and_repeat() {
        let c = Config::try_parse_from(["x"]).unwrap();
        assert_eq!(
            (c.value.as_str(), c.delay_ms, c.ttl_ms),
            ("value-of-{key}", 0, 0)
        );
        let c = Config::try_parse_from([
            "x",
            "--absent-prefix",
            "a:",
            "--absent-prefix",
            "b:",
            "--slow-prefix",
            "s:",
            "--slow-ms",
            "50",
            "--delay-ms",
            "5",
        ])
        .unwrap();
        assert_eq!(c.absent_prefix, ["a:", "b:"]);
        assert_eq!(c.delay_for(b"s:1"), Duration::from_millis(50));
        assert_eq!(c.delay_for(b"x"), Duration::from_millis(5));
    }
}
