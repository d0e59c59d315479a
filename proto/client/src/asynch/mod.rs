//! The async client (feature `tokio`): one multiplexed connection served
//! by two tasks. Callers encode their request frame and queue it for the
//! writer task (so a caller's future dropped mid-call cannot leave half a
//! frame on the wire); the reader task routes each reply frame to its
//! request's channel by id.

mod io;

use std::sync::{Arc, Mutex};

use citadel_proto::rpc::{RequestWriter, FLAG_FINAL};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::command::{Command, Request};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::methods::{typed_methods, with_options_methods, WithOptions};
use crate::options::{CallOptions, ClientOptions};
use crate::outcome::{Outcome, Partial};
use crate::pending::Pending;
use crate::stream::StreamState;
use crate::transport::Endpoint;

type Slots = Pending<UnboundedSender<Result<Frame>>>;

/// The async twin of [`Client`](crate::Client), over tokio's TCP and Unix
/// streams (not shared memory: an [`Endpoint::Shm`] fails to connect with
/// an `Unsupported` I/O error); needs a runtime with I/O and time enabled. Concurrent calls
/// (`join!`, spawned tasks sharing an `Arc<AsyncClient>`) are pipelined on
/// the one connection.
///
/// ```no_run
/// use citadel_client::AsyncClient;
///
/// # async fn run() -> Result<(), citadel_client::Error> {
/// let client = AsyncClient::connect("127.0.0.1:7379").await?;
/// client.set("k", "v").await?;
/// let (a, b) = tokio::join!(client.get("k"), client.incr("n", 1));
/// assert_eq!(a?.as_deref(), Some(&b"v"[..]));
/// let _ = b?;
/// # Ok(())
/// # }
/// ```
pub struct AsyncClient {
    endpoint: Endpoint,
    options: ClientOptions,
    pending: Arc<Slots>,
    encoder: Mutex<RequestWriter>,
    outbox: UnboundedSender<Vec<u8>>,
    tasks: [JoinHandle<()>; 2],
}

impl AsyncClient {
    /// Connects with default options.
    pub async fn connect(endpoint: impl Into<Endpoint>) -> Result<AsyncClient> {
        Self::connect_with(endpoint, ClientOptions::default()).await
    }

    /// Connects, then sends the options' HELLO if there is one.
    pub async fn connect_with(
        endpoint: impl Into<Endpoint>,
        options: ClientOptions,
    ) -> Result<AsyncClient> {
        let endpoint = endpoint.into();
        let connecting = async {
            Ok::<_, std::io::Error>(match &endpoint {
                Endpoint::Tcp(addr) => {
                    let s = TcpStream::connect(addr.as_str()).await?;
                    s.set_nodelay(true)?;
                    let (r, w) = s.into_split();
                    io::spawn(r, w)
                }
                Endpoint::Unix(path) => {
                    let (r, w) = UnixStream::connect(path).await?.into_split();
                    io::spawn(r, w)
                }
                // The reply ring's reader blocks a thread (spin, then park
                // on an eventfd); the blocking `Client` speaks it.
                Endpoint::Shm(_) => return Err(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "the async client speaks TCP and Unix sockets; use the blocking Client for shm",
                )),
            })
        };
        let (pending, outbox, tasks) = match options.connect_timeout {
            None => connecting.await?,
            Some(t) => tokio::time::timeout(t, connecting)
                .await
                .map_err(|_| Error::Timeout)??,
        };
        let client = AsyncClient {
            endpoint,
            options,
            pending,
            encoder: Mutex::new(RequestWriter::new()),
            outbox,
            tasks,
        };
        if let Some(hello) = &client.options.hello {
            client.hello(hello).await?;
        }
        Ok(client)
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.pending.is_closed()
    }

    /// Requests sent and not yet fully answered.
    pub fn in_flight(&self) -> usize {
        self.pending.in_flight()
    }

    /// These per-call options instead of the client's defaults.
    pub fn with_options(&self, options: CallOptions) -> WithOptions<'_, AsyncClient> {
        WithOptions {
            client: self,
            options,
        }
    }

    /// Registers, encodes and queues a request (no waiting).
    fn start(&self, req: Request<'_, '_>, options: &CallOptions) -> Result<AsyncPending> {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.pending.register(tx)?;
        let pending = AsyncPending {
            id,
            rx,
            slots: Arc::clone(&self.pending),
            deadline: options.deadline.map(|d| Instant::now() + d),
        };
        let mut frame = Vec::new();
        let mut encoder = self.encoder.lock().unwrap_or_else(|e| e.into_inner());
        req.encode(&mut encoder, &mut frame, id, options)?;
        drop(encoder);
        self.outbox.send(frame).map_err(|_| Error::Closed)?;
        Ok(pending)
    }

    pub(crate) async fn exec_with(
        &self,
        req: Request<'_, '_>,
        options: &CallOptions,
    ) -> Result<Outcome> {
        self.start(req, options)?.wait().await
    }

    async fn exec(&self, req: Request<'_, '_>) -> Result<Outcome> {
        self.exec_with(req, &self.options.call).await
    }

    pub(crate) async fn stream_with(
        &self,
        command: &Command<'_>,
        options: &CallOptions,
    ) -> Result<AsyncCallStream> {
        Ok(AsyncCallStream {
            pending: self.start(Request::One(command), options)?,
            state: StreamState::default(),
        })
    }

    async fn stream(&self, command: &Command<'_>) -> Result<AsyncCallStream> {
        self.stream_with(command, &self.options.call).await
    }

    typed_methods!(AsyncCallStream; async; .await);
}

with_options_methods!(AsyncClient, AsyncCallStream; async; .await);

impl Drop for AsyncClient {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.pending.close();
    }
}

/// A request in flight on an [`AsyncClient`].
struct AsyncPending {
    id: u64,
    rx: UnboundedReceiver<Result<Frame>>,
    slots: Arc<Slots>,
    deadline: Option<Instant>,
}

impl AsyncPending {
    async fn next_frame(&mut self) -> Result<Frame> {
        let item = match self.deadline {
            None => self.rx.recv().await,
            Some(at) => tokio::time::timeout_at(at, self.rx.recv())
                .await
                .map_err(|_| Error::Timeout)?,
        };
        item.unwrap_or(Err(Error::Closed))
    }

    async fn wait(mut self) -> Result<Outcome> {
        loop {
            let frame = self.next_frame().await?;
            if frame.header.has(FLAG_FINAL) {
                return frame.into_outcome();
            }
        }
    }
}

impl Drop for AsyncPending {
    fn drop(&mut self) {
        self.slots.cancel(self.id);
    }
}

/// A streamed call on an [`AsyncClient`]: [`next`](Self::next) partial
/// results until `None`, then [`finish`](Self::finish) for the final
/// reply or the error that ended the stream.
pub struct AsyncCallStream {
    pending: AsyncPending,
    state: StreamState,
}

impl AsyncCallStream {
    pub async fn next(&mut self) -> Option<Partial> {
        if self.state.is_done() {
            return None;
        }
        let item = self.pending.next_frame().await;
        self.state.on_frame(item)
    }

    /// The final reply, after skipping the partials not yet read.
    pub async fn finish(mut self) -> Result<Vec<u8>> {
        while self.next().await.is_some() {}
        self.state.take_result()
    }
}

impl std::fmt::Debug for AsyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncClient")
            .field("endpoint", &self.endpoint)
            .field("closed", &self.is_closed())
            .finish()
    }
}
