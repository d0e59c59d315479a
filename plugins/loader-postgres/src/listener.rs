//! LISTEN on the invalidation channel over a dedicated connection: each
//! NOTIFY payload is a key the server must drop (an empty payload: anything
//! may have changed). After every (re)subscription the server is told to
//! resync, since notifications sent while nobody listened are lost.

use std::time::Duration;

use citadel_plugin::Notifier;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, Error as PgError};

use crate::backoff::Backoff;
use crate::database::{ConnectError, Database, PgConnection};
use crate::error::describe;

/// Listens forever, resubscribing with backoff.
pub async fn run(db: Database, channel: String, notifier: Notifier, reconnect_max: Duration) {
    let mut backoff = Backoff::new(reconnect_max);
    let mut failing = false;
    loop {
        match subscribe(&db, &channel, &notifier).await {
            Ok(session) => {
                backoff.reset();
                failing = false;
                tracing::info!(channel, "listening for invalidations on {}", db.target());
                notifier.resync();
                let why = session.ended().await;
                tracing::warn!(channel, "LISTEN connection lost: {why}");
            }
            // Repeated failures while the database is down: once at warn.
            Err(e) if failing => tracing::debug!(channel, "LISTEN connection: {e}"),
            Err(e) => {
                failing = true;
                tracing::warn!(channel, "LISTEN connection: {e}; retrying with backoff");
            }
        }
        tokio::time::sleep(backoff.next_pause()).await;
    }
}

/// A subscribed connection.
struct Session {
    /// Kept alive: dropping it would close the connection.
    client: Client,
    pump: JoinHandle<Result<(), PgError>>,
}

impl Session {
    /// Waits until the connection ends; returns why.
    async fn ended(self) -> String {
        let why = match self.pump.await {
            Ok(Ok(())) => "closed by the server".to_string(),
            Ok(Err(e)) => describe(&e),
            Err(e) => format!("notification task failed: {e}"),
        };
        drop(self.client);
        why
    }
}

/// Connects and LISTENs (within the connect timeout).
async fn subscribe(
    db: &Database,
    channel: &str,
    notifier: &Notifier,
) -> Result<Session, ConnectError> {
    let (client, io) = db.connect().await?;
    let pump = tokio::spawn(forward(io, notifier.clone()));
    let sql = format!("LISTEN {}", quote_ident(channel));
    let listen = client.batch_execute(&sql);
    let limit = db.connect_timeout();
    match tokio::time::timeout(limit, listen).await {
        Ok(result) => result?,
        Err(_) => return Err(ConnectError::TimedOut(limit.as_millis() as u64)),
    }
    Ok(Session { client, pump })
}

/// Polls the connection, forwarding every notification as an invalidation.
async fn forward(mut io: PgConnection, notifier: Notifier) -> Result<(), PgError> {
    while let Some(message) = std::future::poll_fn(|cx| io.poll_message(cx)).await {
        match message? {
            // A NOTIFY without a payload: anything may have changed.
            AsyncMessage::Notification(n) if n.payload().is_empty() => notifier.resync(),
            AsyncMessage::Notification(n) => {
                notifier.invalidate(n.payload().as_bytes());
            }
            AsyncMessage::Notice(n) => tracing::info!("server notice: {}", n.message()),
            _ => {}
        }
    }
    Ok(())
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(
            super::quote_ident("citadel_invalidate"),
            "\"citadel_invalidate\""
        );
        assert_eq!(super::quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
