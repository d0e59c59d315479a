//! The async connection's two tasks: the writer sends queued request
//! frames (coalescing what is queued into one write), the reader routes
//! reply frames by id. Either ending fails whatever is in flight.

use std::sync::Arc;

use citadel_proto::rpc::HEADER_LEN;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use super::Slots;
use crate::error::Result;
use crate::frame::{parse_header, Frame};
use crate::pending::Pending;

/// Most bytes gathered into one write.
const MAX_COALESCE: usize = 1 << 20;

/// Starts the tasks of a connection split into `reader` and `writer`.
pub(super) fn spawn<R, W>(
    reader: R,
    writer: W,
) -> (Arc<Slots>, UnboundedSender<Vec<u8>>, [JoinHandle<()>; 2])
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let pending = Arc::new(Pending::new());
    let (outbox, queued) = mpsc::unbounded_channel();
    let read = tokio::spawn(read_replies(Arc::clone(&pending), reader));
    let write = tokio::spawn(write_requests(Arc::clone(&pending), queued, writer));
    (pending, outbox, [read, write])
}

async fn read_replies(pending: Arc<Slots>, reader: impl AsyncRead + Unpin) {
    let mut reader = BufReader::with_capacity(64 << 10, reader);
    while let Ok(frame) = read_frame(&mut reader).await {
        pending.dispatch(frame);
    }
    pending.close();
}

async fn read_frame(r: &mut (impl AsyncRead + Unpin)) -> Result<Frame> {
    let mut head = [0u8; HEADER_LEN];
    r.read_exact(&mut head).await?;
    let header = parse_header(&head)?;
    let mut body = vec![0u8; header.body_len as usize];
    r.read_exact(&mut body).await?;
    Ok(Frame { header, body })
}

async fn write_requests(
    pending: Arc<Slots>,
    mut queued: UnboundedReceiver<Vec<u8>>,
    mut writer: impl AsyncWrite + Unpin,
) {
    while let Some(mut frames) = queued.recv().await {
        while frames.len() < MAX_COALESCE {
            match queued.try_recv() {
                Ok(more) => frames.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if writer.write_all(&frames).await.is_err() {
            pending.close();
            return;
        }
    }
    // Every sender is gone: the client was dropped.
    let _ = writer.shutdown().await;
}
