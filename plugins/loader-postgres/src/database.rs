//! Where the database is and how to open a connection to it.

use std::time::Duration;

use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{Client, Connection, NoTls, Socket};

use crate::error::describe;
use crate::query::PrepareError;

/// tokio-postgres's default TCP keepalive idle time (as libpq's).
const LIBPQ_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// A connection's I/O half: it must be polled for its client to work.
pub type PgConnection = Connection<Socket, NoTlsStream>;

/// Why a connection could not be opened (or made ready for loads).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("no connection within {0} ms")]
    TimedOut(u64),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
}

/// The database named by `--dsn`, with the connect timeout applied.
#[derive(Clone, Debug)]
pub struct Database {
    pg: tokio_postgres::Config,
    connect_timeout: Duration,
}

impl Database {
    pub fn new(dsn: &str, connect_timeout: Duration) -> Result<Self, tokio_postgres::Error> {
        let mut pg: tokio_postgres::Config = dsn.parse()?;
        pg.connect_timeout(connect_timeout);
        if pg.get_application_name().is_none() {
            pg.application_name(env!("CARGO_PKG_NAME"));
        }
        // Notice a database host that vanished without closing its
        // connections in seconds, not hours (the DSN's own settings win).
        if pg.get_keepalives_idle() == LIBPQ_KEEPALIVES_IDLE {
            pg.keepalives_idle(Duration::from_secs(10));
        }
        if pg.get_keepalives_interval().is_none() {
            pg.keepalives_interval(Duration::from_secs(2));
        }
        if pg.get_keepalives_retries().is_none() {
            pg.keepalives_retries(3);
        }
        if pg.get_tcp_user_timeout().is_none() {
            pg.tcp_user_timeout(Duration::from_secs(10));
        }
        Ok(Self {
            pg,
            connect_timeout,
        })
    }

    /// Opens a connection (socket, startup and authentication within the
    /// connect timeout).
    pub async fn connect(&self) -> Result<(Client, PgConnection), ConnectError> {
        let ms = self.connect_timeout.as_millis() as u64;
        match tokio::time::timeout(self.connect_timeout, self.pg.connect(NoTls)).await {
            Ok(connected) => Ok(connected?),
            Err(_) => Err(ConnectError::TimedOut(ms)),
        }
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Host(s), port(s) and database, for logs (never the password).
    pub fn target(&self) -> String {
        let hosts: Vec<String> = self
            .pg
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = self.pg.get_ports().iter().map(u16::to_string).collect();
        format!(
            "{} port {} database {}",
            hosts.join(","),
            ports.join(","),
            self.pg.get_dbname().unwrap_or("(default)")
        )
    }
}
