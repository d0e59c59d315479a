//! What the fake origin says about a key: a pure function of the flags,
//! the key's generation and whether the origin is `down`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use citadel_plugin::codec::LoadFailure;

use crate::config::Config;

/// The answer to one load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Found(Vec<u8>),
    Absent,
    Fail(LoadFailure),
    Crash,
}

/// What the control file changes while the loader runs.
#[derive(Debug, Default)]
pub struct State {
    generations: Mutex<HashMap<Vec<u8>, u64>>,
    /// Added to every key's generation (`resync`).
    epoch: AtomicU64,
    down: AtomicBool,
}

impl State {
    pub fn generation(&self, key: &[u8]) -> u64 {
        let own = self.lock().get(key).copied().unwrap_or(0);
        // ORDERING: a counter read on its own; nothing is published through it.
        own + self.epoch.load(Ordering::Relaxed)
    }

    /// `key` changed.
    pub fn bump(&self, key: &[u8]) {
        *self.lock().entry(key.to_vec()).or_default() += 1;
    }

    /// Every key changed.
    pub fn bump_all(&self) {
        self.epoch.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_down(&self, down: bool) {
        // ORDERING: a flag only.
        self.down.store(down, Ordering::Relaxed);
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, u64>> {
        self.generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn matches(prefixes: &[String], key: &[u8]) -> bool {
    prefixes.iter().any(|p| key.starts_with(p.as_bytes()))
}

/// The answer to a load of `key` (see `Config` for the order of the rules).
pub fn decide(config: &Config, state: &State, key: &[u8]) -> Decision {
    let text = String::from_utf8_lossy(key);
    if config
        .crash_key
        .as_deref()
        .is_some_and(|k| k.as_bytes() == key)
    {
        return Decision::Crash;
    }
    if state.is_down() {
        let why = format!("fake origin is down (loading {text})");
        return Decision::Fail(LoadFailure::Unavailable(why));
    }
    if matches(&config.unavailable_prefix, key) {
        let why = format!("fake origin refused {text}");
        return Decision::Fail(LoadFailure::Unavailable(why));
    }
    if matches(&config.timeout_prefix, key) {
        let why = format!("fake origin did not answer for {text}");
        return Decision::Fail(LoadFailure::Timeout(why));
    }
    if matches(&config.absent_prefix, key) {
        return Decision::Absent;
    }
    let value = config
        .value
        .replace("{key}", &text)
        .replace("{gen}", &state.generation(key).to_string());
    Decision::Found(value.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn rules_apply_in_order() {
        let config = Config::try_parse_from([
            "x",
            "--value",
            "v:{key}:{gen}",
            "--absent-prefix",
            "no:",
            "--unavailable-prefix",
            "down:",
            "--timeout-prefix",
            "slow:",
            "--crash-key",
            "boom",
        ])
        .unwrap();
        let state = State::default();
        let d = |k: &[u8]| decide(&config, &state, k);
        assert_eq!(d(b"user:1"), Decision::Found(b"v:user:1:0".to_vec()));
        assert_eq!(d(b"no:1"), Decision::Absent);
        assert_eq!(
            d(b"down:1"),
            Decision::Fail(LoadFailure::Unavailable(
                "fake origin refused down:1".into()
            ))
        );
        assert!(matches!(
            d(b"slow:1"),
            Decision::Fail(LoadFailure::Timeout(_))
        ));
        assert_eq!(d(b"boom"), Decision::Crash);
        state.bump(b"user:1");
        assert_eq!(d(b"user:1"), Decision::Found(b"v:user:1:1".to_vec()));
        state.bump_all();
        assert_eq!(d(b"user:2"), Decision::Found(b"v:user:2:1".to_vec()));
        state.set_down(true);
        assert!(matches!(
            d(b"user:1"),
            Decision::Fail(LoadFailure::Unavailable(_))
        ));
        assert_eq!(d(b"boom"), Decision::Crash);
    }
}
