//! `citadel-loader-postgres`: the Citadel server's loader plugin for
//! PostgreSQL. It answers each `LoadRequest` (a cache miss) with one query,
//! `LoadReply { found, value, ttl_ms }` or an `ErrorReply`, and pushes an
//! `Invalidation` for each NOTIFY on `--listen-channel`.
//!
//! Two sides: the ring thread (`rings`) reads requests and publishes
//! replies; a tokio runtime runs the loads on a pool of connections (`pool`)
//! and the LISTEN connection (`listener`), and reports back through `events`.

mod backoff;
mod config;
mod database;
mod error;
mod events;
mod listener;
mod loader;
mod pool;
mod query;
mod rings;
mod wire;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use citadel_proto::handshake::{AttachError, HandshakeError};
use citadel_proto::{Handshake, SpinPolicy};
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

use config::Config;
use database::Database;
use events::{Event, EventSender};
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
    Serve(#[from] rings::ServeError),
}

fn main() -> ExitCode {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
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
    let ends = handshake.attach()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads.into())
        .thread_name("pg-io")
        .enable_all()
        .build()
        .map_err(MainError::Runtime)?;
    let (events, inbox) = events::channel().map_err(MainError::Runtime)?;
    let loader = {
        let _in_runtime = runtime.enter();
        stop_on_signals(events.clone()).map_err(MainError::Runtime)?;
        if let Some(channel) = &config.listen_channel {
            let listen = listener::run(
                db.clone(),
                channel.clone(),
                events.clone(),
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
    tracing::info!(
        pairs = handshake.pairs.len(),
        "serving loads from {}",
        db.target()
    );
    let options = rings::Options {
        max_attempts: handshake.max_attempts,
        max_in_flight: MAX_IN_FLIGHT,
        spin: SpinPolicy::default(),
    };
    let served = rings::serve(ends, options, &inbox, |job| {
        let loader = loader.clone();
        let events = events.clone();
        runtime.spawn(async move {
            let answer = loader.answer(&job.key, job.deadline_ms).await;
            events.send(Event::Answered {
                pair: job.pair,
                seq: job.seq,
                answer,
            });
        });
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM and SIGINT become `Event::Stop` (handlers installed before this
/// returns, so an early signal is not fatal).
fn stop_on_signals(events: EventSender) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            events.send(Event::Stop);
        }
    });
    Ok(())
}
