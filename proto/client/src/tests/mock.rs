//! An in-process RPC server for the tests: a thread per connection that
//! decodes requests with `citadel_proto::rpc::decode_request` and answers
//! with `ReplyWriter` from a small in-memory map. Plugin calls script the
//! awkward cases:
//!
//! * `echo`: the payload back;
//! * `slow`: the payload back after the payload's number of milliseconds,
//!   from another thread (so later requests overtake it);
//! * `stream`: `n` PARTIAL frames (`options` = "n=3"), then the final one
//!   (with "n=3 die": the connection is dropped instead of the final one);
//! * `die`: the server drops the connection without answering;
//! * `fail`: a `Plugin` error.
//!
//! And GET of the key `!crash` stops the whole server before answering,
//! once [`Mock::arm_crash`] was called.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use citadel_proto::rpc::{
    decode_request, Body, Condition, ErrorCode, FrameHeader, Method, Op, ReplyWriter, StatValue,
    HEADER_LEN,
};

use crate::Endpoint;

type Store = Arc<Mutex<BTreeMap<Vec<u8>, (Vec<u8>, u64)>>>;

trait Conn: Read + Write + Send + 'static {
    fn clone_conn(&self) -> Box<dyn Conn>;
    fn close(&self);
}

impl Conn for TcpStream {
    fn clone_conn(&self) -> Box<dyn Conn> {
        Box::new(self.try_clone().unwrap())
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Conn for UnixStream {
    fn clone_conn(&self) -> Box<dyn Conn> {
        Box::new(self.try_clone().unwrap())
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

pub(crate) struct Mock {
    pub endpoint: Endpoint,
    control: Arc<Control>,
    _dir: Option<TempDir>,
}

/// What a connection's thread needs to stop the whole server.
struct Control {
    endpoint: Endpoint,
    accepted: AtomicUsize,
    stopped: AtomicBool,
    crash_armed: AtomicBool,
    /// Set once the listener is closed (connecting is refused).
    listener_closed: AtomicBool,
    open: Mutex<Vec<Box<dyn Conn>>>,
}

impl Control {
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag, and wait for it
        // to close the listener before dropping the connections: a client
        // that sees its connection end must find the server refusing.
        let _ = match &self.endpoint {
            Endpoint::Tcp(a) => TcpStream::connect(a).map(drop),
            Endpoint::Unix(p) => UnixStream::connect(p).map(drop),
            _ => unreachable!("the mock serves sockets"),
        };
        while !self.listener_closed.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        for c in self.open.lock().unwrap().drain(..) {
            c.close();
        }
    }
}

/// A directory removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("citadel-client-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Mock {
    pub fn tcp() -> Mock {
        Self::tcp_on("127.0.0.1:0")
    }

    /// A server on `addr` (e.g. the port a stopped mock had).
    pub fn tcp_on(addr: &str) -> Mock {
        // The stopped server's listener may take a moment to close.
        let listener = (0..100)
            .find_map(|_| {
                let bound = TcpListener::bind(addr).ok();
                if bound.is_none() {
                    std::thread::sleep(Duration::from_millis(20));
                }
                bound
            })
            .expect("address stays in use");
        let endpoint = Endpoint::tcp(listener.local_addr().unwrap().to_string());
        Self::serve(endpoint, None, move || {
            let (s, _) = listener.accept().ok()?;
            s.set_nodelay(true).unwrap();
            Some(Box::new(s) as Box<dyn Conn>)
        })
    }

    pub fn unix() -> Mock {
        let dir = TempDir::new("mock");
        let path = dir.0.join("rpc.sock");
        let listener = UnixListener::bind(&path).unwrap();
        Self::serve(Endpoint::unix(&path), Some(dir), move || {
            let (s, _) = listener.accept().ok()?;
            Some(Box::new(s) as Box<dyn Conn>)
        })
    }

    fn serve(
        endpoint: Endpoint,
        dir: Option<TempDir>,
        mut accept: impl FnMut() -> Option<Box<dyn Conn>> + Send + 'static,
    ) -> Mock {
        let control = Arc::new(Control {
            endpoint: endpoint.clone(),
            accepted: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            crash_armed: AtomicBool::new(false),
            listener_closed: AtomicBool::new(false),
            open: Mutex::default(),
        });
        let serving = control.clone();
        let store = Store::default();
        std::thread::spawn(move || {
            while let Some(conn) = accept() {
                if serving.stopped.load(Ordering::SeqCst) {
                    break;
                }
                serving.accepted.fetch_add(1, Ordering::SeqCst);
                serving.open.lock().unwrap().push(conn.clone_conn());
                let (store, control) = (store.clone(), serving.clone());
                std::thread::spawn(move || serve_conn(conn, store, &control));
            }
            drop(accept);
            serving.listener_closed.store(true, Ordering::SeqCst);
        });
        Mock {
            endpoint,
            control,
            _dir: dir,
        }
    }

    /// Connections accepted so far (waiting a moment for the accept
    /// thread to count the ones just made).
    pub fn accepted(&self) -> usize {
        std::thread::sleep(Duration::from_millis(20));
        self.control.accepted.load(Ordering::SeqCst)
    }

    /// Makes GET `!crash` stop the server.
    pub fn arm_crash(&self) {
        self.control.crash_armed.store(true, Ordering::SeqCst);
    }

    /// Stops accepting and drops every connection (the server "dies").
    pub fn stop(&self) {
        self.control.stop();
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.stop();
    }
}

type Shared = Arc<Mutex<Box<dyn Conn>>>;

fn serve_conn(mut conn: Box<dyn Conn>, store: Store, control: &Control) {
    let out: Shared = Arc::new(Mutex::new(conn.clone_conn()));
    let mut w = ReplyWriter::new();
    loop {
        let mut frame = vec![0u8; HEADER_LEN];
        if conn.read_exact(&mut frame).is_err() {
            return;
        }
        let body_len = u32::from_le_bytes(frame[4..8].try_into().unwrap()) as usize;
        frame.resize(HEADER_LEN + body_len, 0);
        if conn.read_exact(&mut frame[HEADER_LEN..]).is_err() {
            return;
        }
        let (header, _) = FrameHeader::parse(&frame).unwrap().unwrap();
        let req = decode_request(&header, &frame[HEADER_LEN..]).unwrap();
        let mut buf = Vec::new();
        match req.op {
            Op::Call {
                name,
                payload,
                options,
            } => {
                if !call(&mut w, &mut buf, req.id, name, payload, options, &out) {
                    conn.close();
                    return;
                }
            }
            Op::Batch(batch) => {
                for op in batch.iter() {
                    let body = match op.unwrap() {
                        Op::Call { .. } | Op::Hello { .. } => {
                            w.error(ErrorCode::BadFrame, "not in a batch")
                        }
                        op => answer(&mut w, op, &store),
                    };
                    w.push_outcome(body);
                }
                let body = w.batch();
                w.finish(&mut buf, req.id, Method::Batch, body);
            }
            Op::Get { key: b"!crash" } if control.crash_armed.load(Ordering::SeqCst) => {
                control.stop();
                return;
            }
            op => {
                let body = answer(&mut w, op, &store);
                w.finish(&mut buf, req.id, op.method(), body);
            }
        }
        if out.lock().unwrap().write_all(&buf).is_err() {
            return;
        }
    }
}

/// Answers a scripted plugin call (see the module doc); false: drop the
/// connection.
fn call(
    w: &mut ReplyWriter,
    buf: &mut Vec<u8>,
    id: u64,
    name: &str,
    payload: &[u8],
    options: &str,
    out: &Shared,
) -> bool {
    match name {
        "echo" => {
            let body = w.call_reply(payload);
            w.finish(buf, id, Method::Call, body);
        }
        "slow" => {
            let ms: u64 = std::str::from_utf8(payload).unwrap().parse().unwrap();
            let payload = payload.to_vec();
            let out = out.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(ms));
                let mut w = ReplyWriter::new();
                let mut buf = Vec::new();
                let body = w.call_reply(&payload);
                w.finish(&mut buf, id, Method::Call, body);
                let _ = out.lock().unwrap().write_all(&buf);
            });
        }
        "stream" => {
            let (n, die) = match options.strip_suffix(" die") {
                Some(n) => (n, true),
                None => (options, false),
            };
            let n: u32 = n.strip_prefix("n=").unwrap().parse().unwrap();
            for i in 0..n {
                let body = w.partial(i, format!("{{\"frame\":{i}}}").as_bytes());
                w.finish(buf, id, Method::Call, body);
            }
            if die {
                let _ = out.lock().unwrap().write_all(buf);
                return false;
            }
            let body = w.call_reply(format!("{{\"frames\":{n}}}").as_bytes());
            w.finish(buf, id, Method::Call, body);
        }
        "die" => return false,
        _ => w.error_frame(buf, id, Method::Call, ErrorCode::Plugin, "plugin failed"),
    }
    true
}

fn answer(w: &mut ReplyWriter, op: Op<'_>, store: &Store) -> Body {
    let mut map = store.lock().unwrap();
    match op {
        Op::Get { key } => w.value(map.get(key).map(|(v, _)| &v[..])),
        Op::Set {
            key,
            value,
            ttl_ms,
            condition,
        } => {
            let exists = map.contains_key(key);
            let applied = match condition {
                Condition::Nx => !exists,
                Condition::Xx => exists,
                _ => true,
            };
            if applied {
                map.insert(key.to_vec(), (value.to_vec(), ttl_ms));
            }
            w.done(applied)
        }
        Op::Delete(keys) => w.int(keys.iter().filter(|k| map.remove(*k).is_some()).count() as i64),
        Op::Exists(keys) => w.int(keys.iter().filter(|k| map.contains_key(*k)).count() as i64),
        Op::Expire { key, ttl_ms } => {
            let entry = map.get_mut(key);
            let found = entry.is_some();
            if let Some(e) = entry {
                e.1 = ttl_ms;
            }
            w.done(found)
        }
        Op::Ttl { key } => w.int(match map.get(key) {
            None => -2,
            Some((_, 0)) => -1,
            Some((_, ms)) => *ms as i64,
        }),
        Op::Incr { key, by } => {
            let old = map.get(key).map_or(Some(0), |(v, _)| {
                std::str::from_utf8(v).ok()?.parse::<i64>().ok()
            });
            match old.and_then(|n| n.checked_add(by)) {
                Some(n) => {
                    map.insert(key.to_vec(), (n.to_string().into_bytes(), 0));
                    w.int(n)
                }
                None => w.error(ErrorCode::NotInteger, "value is not an integer"),
            }
        }
        Op::MGet(keys) => {
            let values: Vec<Option<Vec<u8>>> = keys
                .iter()
                .map(|k| map.get(k).map(|(v, _)| v.clone()))
                .collect();
            w.values(values.iter().map(|v| v.as_deref()))
        }
        Op::MSet(pairs) => {
            for (k, v) in pairs.iter() {
                map.insert(k.to_vec(), (v.to_vec(), 0));
            }
            w.done(true)
        }
        Op::Scan { pattern, .. } => {
            let prefix = pattern.unwrap_or("*").trim_end_matches('*').as_bytes();
            w.scan_page(
                0,
                map.keys().filter(|k| k.starts_with(prefix)).map(|k| &k[..]),
            )
        }
        Op::Stats { .. } => w.stats([
            ("keys", StatValue::Int(map.len() as i64)),
            ("server", StatValue::Text("mock")),
        ]),
        Op::Hello {
            password, features, ..
        } => match password {
            Some("bad") => w.error(ErrorCode::Auth, "wrong password"),
            _ => w.welcome(1, "citadel mock", features.iter().filter(|f| *f != "nope")),
        },
        Op::Call { .. } | Op::Batch(_) => unreachable!("answered by serve_conn"),
    }
}
