//! LISTEN on the invalidation channel over a dedicated connection: each
//! NOTIFY payload is a key the server must drop (an empty payload: anything
//! may have changed). After every (re)subscription the server is told to
//! resync, since notifications sent while nobody listened are lost.

use std::time::Duration;

use tokio_postgres::AsyncMessage;

use crate::backoff::Backoff;
use crate::database::{ConnectError, Database, PgConnection};
use crate::events::{Event, EventSender};

/// Listens forever, reconnecting with backoff.
pub async fn run(db: Database, channel: String, events: EventSender, reconnect_max: Duration) {
    let mut backoff = Backoff::new(reconnect_max);
    loop {
        match listen(&db, &channel, &events, &mut backoff).await {
            Ok(()) => tracing::warn!(channel, "LISTEN connection closed by the server"),
            Err(e) => tracing::warn!(channel, "LISTEN connection: {e}"),
        }
        tokio::time::sleep(backoff.next_pause()).await;
    }
}

/// One subscription: returns when its connection ends.
async fn listen(
    db: &Database,
    channel: &str,
    events: &EventSender,
    backoff: &mut Backoff,
) -> Result<(), ConnectError> {
    let (client, io) = db.connect().await?;
    let pump = tokio::spawn(forward(io, events.clone()));
    let subscribed = tokio::time::timeout(
        db.connect_timeout(),
        client.batch_execute(&format!("LISTEN {}", quote_ident(channel))),
    )
    .await;
    match subscribed {
        Ok(result) => result?,
        Err(_) => {
            return Err(ConnectError::TimedOut(
                db.connect_timeout().as_millis() as u64
            ))
        }
    }
    backoff.reset();
    tracing::info!(channel, "listening for invalidations on {}", db.target());
    events.send(Event::Resync);
    // `client` stays alive until the connection ends.
    let ended = pump.await;
    drop(client);
    match ended {
        Ok(result) => Ok(result?),
        Err(join) => {
            tracing::error!("notification task failed: {join}");
            Ok(())
        }
    }
}

/// Polls the connection, forwarding every notification as an invalidation.
async fn forward(mut io: PgConnection, events: EventSender) -> Result<(), tokio_postgres::Error> {
    while let Some(message) = std::future::poll_fn(|cx| io.poll_message(cx)).await {
        match message? {
            // A NOTIFY without a payload: anything may have changed.
            AsyncMessage::Notification(n) if n.payload().is_empty() => events.send(Event::Resync),
            AsyncMessage::Notification(n) => {
                events.send(Event::Invalidate(n.payload().as_bytes().to_vec()));
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
