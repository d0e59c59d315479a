//! `citadel-fake-loader`: a read-through loader plugin without a database,
//! written on the SDK's out-of-order mode. It answers `LoadRequest`s from
//! rules given by flags (`--help`), delays answers on a timer thread,
//! pushes invalidations named in a control file, and logs the keys it
//! served, so end-to-end tests (`tests/tests/readthrough_loader.rs`) can
//! drive every read-through path of the server without PostgreSQL.

mod answer;
mod config;
mod control;
mod rules;

use std::process::ExitCode;
use std::sync::Arc;

use citadel_plugin::{Kind, Options, Plugin, Reply, ServeError};
use clap::Parser;

use answer::{Answer, Answerer, Served};
use config::Config;
use rules::{decide, Decision, State};

#[derive(Debug, thiserror::Error)]
enum MainError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("--served-log: {0}")]
    ServedLog(std::io::Error),
}

fn main() -> ExitCode {
    let config = Config::parse();
    citadel_plugin::init_logging();
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> Result<(), MainError> {
    let plugin = Plugin::from_env(Options::default())?;
    let served = Served::open(config.served_log.as_deref()).map_err(MainError::ServedLog)?;
    let state = Arc::new(State::default());
    if let Some(path) = &config.control {
        let poll = config.control_poll();
        control::watch(path.clone(), poll, Arc::clone(&state), plugin.notifier());
    }
    let answerer = Answerer::start(served);
    tracing::info!(pairs = plugin.pairs(), "fake loader serving");
    plugin.serve_out_of_order(|req, responder| {
        if req.kind != Kind::Request {
            return;
        }
        let key = match req.load_key() {
            Ok(key) => key.to_vec(),
            Err(bad_request) => return responder.reply(bad_request),
        };
        let reply = match decide(&config, &state, &key) {
            Decision::Crash => {
                tracing::error!(key = %String::from_utf8_lossy(&key), "crash key: aborting");
                std::process::abort();
            }
            Decision::Found(value) => Reply::load_found(&value, config.ttl_ms),
            Decision::Absent => Reply::load_absent(),
            Decision::Fail(failure) => Reply::load_failed(&failure),
        };
        let delay = config.delay_for(&key);
        answerer.send(
            Answer {
                key,
                reply,
                responder,
            },
            delay,
        );
    })?;
    tracing::info!("stopped");
    Ok(())
}
