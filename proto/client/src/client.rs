//! The blocking client: one multiplexed connection. Callers' threads
//! write whole request frames (under a lock, so frames never interleave);
//! one reader thread routes each reply frame to its request by id, so any
//! number of requests may be in flight and answered in any order. Over
//! shared memory a waiting caller first spins briefly reading the reply
//! ring itself (routing what it finds; for how long: `spin`), and only
//! then waits for the reader thread.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use citadel_proto::rpc::{RequestWriter, FLAG_FINAL};

use crate::command::{Command, Request};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::methods::{typed_methods, with_options_methods, WithOptions};
use crate::options::{CallOptions, ClientOptions};
use crate::outcome::Outcome;
use crate::pending::Pending;
use crate::spin::SpinBudget;
use crate::stream::CallStream;
use crate::transport::{
    self, CallerReceive, Endpoint, FrameReceiver, FrameSender, Shutdown, Transport,
};

/// A send buffer grown past this by a large request is given back.
const KEEP_SEND_BUFFER: usize = 1 << 20;

/// A blocking client over one connection, shareable between threads
/// (`&self` methods; wrap it in an `Arc`): calls from many threads are
/// pipelined on the connection.
///
/// ```no_run
/// use std::time::Duration;
/// use citadel_client::{Client, SetOptions, Ttl};
///
/// let client = Client::connect("127.0.0.1:7379")?;
/// client.set_with("greeting", "hello", SetOptions::new().ttl(Duration::from_secs(60)))?;
/// assert_eq!(client.get("greeting")?.as_deref(), Some(&b"hello"[..]));
/// assert!(matches!(client.ttl("greeting")?, Ttl::Expires(_)));
/// assert_eq!(client.incr("hits", 1)?, 1);
/// # Ok::<(), citadel_client::Error>(())
/// ```
pub struct Client {
    inner: Arc<Inner>,
    options: ClientOptions,
    reader: Option<JoinHandle<()>>,
}

struct Inner {
    endpoint: Endpoint,
    pending: Pending<Sender<Result<Frame>>>,
    writer: Mutex<Writer>,
    shutdown: Box<dyn Shutdown>,
    caller_receive: Option<Box<dyn CallerReceive>>,
    spin: SpinBudget,
}

struct Writer {
    encoder: RequestWriter,
    buf: Vec<u8>,
    sender: Box<dyn FrameSender>,
}

impl Inner {
    /// The connection is broken: stop the reader, fail what is in flight.
    fn fail(&self) {
        self.shutdown.shutdown();
        self.pending.close();
    }
}

impl Client {
    /// Connects with default options.
    pub fn connect(endpoint: impl Into<Endpoint>) -> Result<Client> {
        Self::connect_with(endpoint, ClientOptions::default())
    }

    /// Connects, then sends the options' HELLO if there is one.
    pub fn connect_with(endpoint: impl Into<Endpoint>, options: ClientOptions) -> Result<Client> {
        let endpoint = endpoint.into();
        let transport = transport::connect(&endpoint, &options)?;
        Self::over(transport, endpoint, options)
    }

    /// A client over an open transport (every transport's way in).
    pub(crate) fn over(
        transport: Transport,
        endpoint: Endpoint,
        options: ClientOptions,
    ) -> Result<Client> {
        let Transport {
            sender,
            receiver,
            shutdown,
            caller_receive,
        } = transport;
        let inner = Arc::new(Inner {
            endpoint,
            pending: Pending::new(),
            writer: Mutex::new(Writer {
                encoder: RequestWriter::new(),
                buf: Vec::new(),
                sender,
            }),
            shutdown,
            caller_receive,
            spin: SpinBudget::new(),
        });
        let reader_inner = Arc::clone(&inner);
        let reader = std::thread::Builder::new()
            .name("citadel-client-reader".into())
            .spawn(move || read_replies(&reader_inner, receiver))?;
        let client = Client {
            inner,
            options,
            reader: Some(reader),
        };
        if let Some(hello) = &client.options.hello {
            client.hello(hello)?;
        }
        Ok(client)
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// True once the connection has ended (every later call fails with
    /// [`Error::Closed`]).
    pub fn is_closed(&self) -> bool {
        self.inner.pending.is_closed()
    }

    /// Requests sent and not yet fully answered.
    pub fn in_flight(&self) -> usize {
        self.inner.pending.in_flight()
    }

    /// These per-call options instead of the client's defaults.
    pub fn with_options(&self, options: CallOptions) -> WithOptions<'_, Client> {
        WithOptions {
            client: self,
            options,
        }
    }

    /// Sends `command` without waiting (pipelining): the answer is
    /// collected later with [`PendingReply::wait`].
    ///
    /// ```no_run
    /// use citadel_client::{Client, Command};
    ///
    /// let client = Client::connect("127.0.0.1:7379")?;
    /// let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    /// let replies = keys
    ///     .iter()
    ///     .map(|k| client.send(&Command::get(k.as_bytes())))
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// for reply in replies {
    ///     let value = reply.wait()?.into_value()?;
    ///     # let _ = value;
    /// }
    /// # Ok::<(), citadel_client::Error>(())
    /// ```
    pub fn send(&self, command: &Command<'_>) -> Result<PendingReply> {
        self.send_with(command, &self.options.call)
    }

    pub fn send_with(&self, command: &Command<'_>, options: &CallOptions) -> Result<PendingReply> {
        self.start(Request::One(command), options)
    }

    fn start(&self, req: Request<'_, '_>, options: &CallOptions) -> Result<PendingReply> {
        let (tx, rx) = mpsc::channel();
        // Registered before it is written: the reply may beat `send`'s return.
        let id = self.inner.pending.register(tx)?;
        let reply = PendingReply {
            id,
            rx,
            inner: Arc::clone(&self.inner),
            deadline: options.deadline.map(|d| Instant::now() + d),
        };
        let mut guard = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Writer {
            encoder,
            buf,
            sender,
        } = &mut *guard;
        buf.clear();
        req.encode(encoder, buf, id, options)?;
        let sent = sender.send(buf);
        if buf.capacity() > KEEP_SEND_BUFFER {
            *buf = Vec::new();
        }
        drop(guard);
        if let Err(e) = sent {
            // A frame the transport refused before writing (too large)
            // leaves the connection as it was.
            if e.is_transport() {
                self.inner.fail();
            }
            return Err(e);
        }
        Ok(reply)
    }

    pub(crate) fn exec_with(&self, req: Request<'_, '_>, options: &CallOptions) -> Result<Outcome> {
        self.start(req, options)?.wait()
    }

    fn exec(&self, req: Request<'_, '_>) -> Result<Outcome> {
        self.exec_with(req, &self.options.call)
    }

    pub(crate) fn stream_with(
        &self,
        command: &Command<'_>,
        options: &CallOptions,
    ) -> Result<CallStream> {
        Ok(CallStream::new(self.start(Request::One(command), options)?))
    }

    fn stream(&self, command: &Command<'_>) -> Result<CallStream> {
        self.stream_with(command, &self.options.call)
    }

    typed_methods!(CallStream; ;);
}

with_options_methods!(Client, CallStream; ;);

impl Drop for Client {
    fn drop(&mut self) {
        self.inner.fail();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The reader thread: routes frames until the connection ends, then fails
/// whatever is still waiting.
fn read_replies(inner: &Inner, mut receiver: Box<dyn FrameReceiver>) {
    while let Ok(true) = receiver.recv_into(&mut |frame| inner.pending.dispatch(frame)) {}
    inner.fail();
}

/// A request in flight (from [`Client::send`]); dropping it gives up on
/// the answer.
pub struct PendingReply {
    id: u64,
    rx: Receiver<Result<Frame>>,
    inner: Arc<Inner>,
    deadline: Option<Instant>,
}

impl PendingReply {
    /// The request's id on its connection.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Waits for the final answer (skipping streamed partial results).
    pub fn wait(mut self) -> Result<Outcome> {
        loop {
            let frame = self.next_frame()?;
            if frame.header.has(FLAG_FINAL) {
                return frame.into_outcome();
            }
        }
    }

    /// The next frame of the answer, within the deadline.
    pub(crate) fn next_frame(&mut self) -> Result<Frame> {
        if let Some(item) = self.read_ring_a_while() {
            return item;
        }
        let received = match self.deadline {
            None => self.rx.recv().map_err(|_| Error::Closed),
            Some(at) => match self
                .rx
                .recv_timeout(at.saturating_duration_since(Instant::now()))
            {
                Ok(item) => Ok(item),
                Err(RecvTimeoutError::Timeout) => Err(Error::Timeout),
                Err(RecvTimeoutError::Disconnected) => Err(Error::Closed),
            },
        };
        received.and_then(|item| item)
    }
}

impl PendingReply {
    /// Over shared memory: reads the reply ring for up to the spin budget
    /// (routing every frame found), until this request has a frame.
    fn read_ring_a_while(&self) -> Option<Result<Frame>> {
        let ring = self.inner.caller_receive.as_ref()?;
        let budget = self.inner.spin.next();
        if budget.is_zero() {
            return None;
        }
        let mut until = Instant::now() + budget;
        if let Some(deadline) = self.deadline {
            until = until.min(deadline);
        }
        loop {
            match self.rx.try_recv() {
                Ok(item) => {
                    self.inner.spin.record(true);
                    return Some(item);
                }
                Err(TryRecvError::Disconnected) => return Some(Err(Error::Closed)),
                Err(TryRecvError::Empty) => {}
            }
            if Instant::now() >= until {
                self.inner.spin.record(false);
                return None;
            }
            if let Err(e) = ring.try_recv_into(&mut |frame| self.inner.pending.dispatch(frame)) {
                // A bad frame taken off the ring here: the reader thread
                // will not see it, so the connection ends here.
                self.inner.fail();
                return Some(Err(e));
            }
            std::hint::spin_loop();
        }
    }
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        // Answered or not, the id is done with: a late frame is dropped.
        self.inner.pending.cancel(self.id);
    }
}
