//! A minimal in-process RPC server for loadgen tests (the real one lives in the server
//! crates), on TCP, a Unix socket and shared memory (`shm_server.rs`): GET answers a fixed 32-byte value (a hit) unless the key ends in `7` (a miss),
//! SET answers Done, Batch one outcome per operation. It answers the frames of each read
//! in REVERSE order, so the loadgen's id matching is exercised. Nothing is allocated per
//! request (the allocation test runs it in its own process), only per connection.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use citadel_proto::rpc::{decode_request, Body, FrameHeader, Method, Op, ReplyWriter, HEADER_LEN};

const VALUE: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

/// Where the server listens; it runs until the test process exits.
pub struct RpcServer {
    pub addr: String,
    pub unix: PathBuf,
    /// The shm handshake socket.
    pub shm: PathBuf,
}

impl RpcServer {
    pub fn start() -> RpcServer {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap().to_string();
        let socket = |kind: &str| {
            let path = std::env::temp_dir().join(format!(
                "loadgen-{kind}-{}-{}.sock",
                std::process::id(),
                super::free_port()
            ));
            let _ = std::fs::remove_file(&path);
            path
        };
        let (unix, shm) = (socket("rpc"), socket("shm"));
        super::shm_server::listen(&shm);
        let ux = UnixListener::bind(&unix).unwrap();
        std::thread::spawn(move || {
            for s in tcp.incoming().flatten() {
                s.set_nodelay(true).unwrap();
                std::thread::spawn(move || serve(s));
            }
        });
        std::thread::spawn(move || {
            for s in ux.incoming().flatten() {
                std::thread::spawn(move || serve(s));
            }
        });
        RpcServer { addr, unix, shm }
    }

    pub fn unix_path(&self) -> &str {
        self.unix.to_str().unwrap()
    }

    pub fn shm_path(&self) -> &str {
        self.shm.to_str().unwrap()
    }
}

fn serve(mut s: impl Read + Write) {
    let mut buf = vec![0u8; 1 << 20];
    let (mut start, mut end) = (0, 0);
    let mut frames: Vec<(usize, usize)> = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(1 << 20);
    let mut w = ReplyWriter::new();
    loop {
        match s.read(&mut buf[end..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => end += n,
        }
        frames.clear();
        while let Some((_, len)) = FrameHeader::parse(&buf[start..end]).expect("bad frame") {
            frames.push((start, len));
            start += len;
        }
        out.clear();
        for &(at, len) in frames.iter().rev() {
            reply(&mut w, &buf[at..at + len], &mut out);
        }
        if s.write_all(&out).is_err() {
            return;
        }
        buf.copy_within(start..end, 0);
        end -= start;
        start = 0;
    }
}

pub fn reply(w: &mut ReplyWriter, frame: &[u8], out: &mut Vec<u8>) {
    let (h, _) = FrameHeader::parse(frame).unwrap().unwrap();
    let req = decode_request(&h, &frame[HEADER_LEN..]).expect("bad request");
    match req.op {
        Op::Get { key } if !key.ends_with(b"7") => {
            ReplyWriter::value_frame(out, h.id, Method::Get, VALUE)
        }
        Op::Batch(ops) => {
            for op in ops.iter() {
                let body = answer(w, op.expect("bad batched op"));
                w.push_outcome(body);
            }
            let body = w.batch();
            w.finish(out, h.id, Method::Batch, body);
        }
        op => {
            let body = answer(w, op);
            w.finish(out, h.id, h.method, body);
        }
    }
}

fn answer(w: &mut ReplyWriter, op: Op<'_>) -> Body {
    match op {
        Op::Get { key } => w.value((!key.ends_with(b"7")).then_some(&VALUE[..])),
        Op::Set { .. } => w.done(true),
        _ => panic!("the load generator sent {op:?}"),
    }
}
