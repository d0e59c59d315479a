//! `citadel-loader-postgres`: the Citadel server's loader plugin for
//! PostgreSQL. It answers each `LoadRequest` (a cache miss) with one query,
//! `LoadReply { found, value, ttl_ms }` or an `ErrorReply`, and pushes an
//! `Invalidation` for each NOTIFY on `--listen-channel`.
//!
//! The SDK's out-of-order serve loop (`citadel_plugin::Plugin`) reads the
//! requests and publishes replies as they come; a tokio runtime runs the
//! loads on a pool of connections (`pool`) and the LISTEN connection
//! (`listener`), answering through each request's `Responder` and pushing
//! invalidations through a `Notifier`.

mod backoff;
mod config;
mod database;
mod error;
mod listener;
mod loader;
mod pool;
mod query;

use std::process::ExitCode;
use std::time::Duration;

use citadel_plugin::{Kind, Options, Plugin, ServeError};
use citadel_proto::handshake::{AttachError, HandshakeError};
use citadel_proto::Handshake;
use clap::Parser;

use config::Config;
use database::Database;
use loader::Loader;
use pool::{Pool, PoolOptions};

/// Most requests of one ring pair in flight at once.
const MAX_IN_FLIGHT: usize = 8192;

#[derive(Debug, thiserror::Error)]
enum MainError {
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error("--dsn: {}", error::describe(.0))]
    Dsn(tokio_postgres::Error),
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

fn main() -> ExitCode {
    let config = Config::parse();
    citadel_plugin::init_logging();
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: &Config) -> Result<(), MainError> {
    let handshake = Handshake::from_env()?;
    let db = Database::new(&config.dsn, config.connect_timeout()).map_err(MainError::Dsn)?;
    let options = Options {
        max_attempts: handshake.max_attempts,
        max_in_flight: MAX_IN_FLIGHT,
        ..Options::default()
    };
    // Installs the SIGTERM/SIGINT handlers: a stop from now on is graceful.
    let plugin = Plugin::new(handshake.attach()?, options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads.into())
        .thread_name("pg-io")
        .enable_all()
        .build()
        .map_err(MainError::Runtime)?;
    let loader = {
        let _in_runtime = runtime.enter();
        if let Some(channel) = &config.listen_channel {
            let listen = listener::run(
                db.clone(),
                channel.clone(),
                plugin.notifier(),
                config.reconnect_max(),
            );
            runtime.spawn(listen);
        }
        let options = PoolOptions {
            sql: config.query.clone(),
            size: config.pool_size.into(),
            pipeline_depth: config.pipeline_depth.into(),
            reconnect_max: config.reconnect_max(),
            statement_timeout: config.query_timeout(),
        };
        Loader::new(
            Pool::start(db.clone(), options),
            config.query_timeout(),
            config.ttl_ms,
        )
    };
    tracing::info!(pairs = plugin.pairs(), "serving loads from {}", db.target());
    let served = plugin.serve_out_of_order(|req, responder| {
        // Other kinds need no answer: dropping the responder settles them.
        if req.kind != Kind::Request {
            return;
        }
        let key = match req.load_key() {
            Ok(key) => key.to_vec(),
            Err(bad_request) => return responder.reply(bad_request),
        };
        let loader = loader.clone();
        let deadline_ms = req.deadline_ms;
        runtime.spawn(async move {
            let reply = loader
                .answer(&key, deadline_ms, responder.max_payload())
                .await;
            responder.reply(reply);
        });
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    served?;
    tracing::info!("stopped");
    Ok(())
}
