//! A raw RPC connection for the server's end-to-end tests: frames written
//! with `RequestWriter`, replies read whole and verified with
//! `decode_reply`, nothing else (the real clients have their own tests).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use citadel_proto::rpc::{decode_reply, schema, FrameHeader, OpBody, RequestWriter, HEADER_LEN};

/// A TCP or Unix socket.
pub trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

pub struct RawRpc {
    pub stream: Box<dyn Stream>,
    pub writer: RequestWriter,
    next_id: u64,
}

/// One reply frame, owned.
#[derive(Debug, Clone)]
pub struct Frame {
    pub header: FrameHeader,
    pub body: Vec<u8>,
}

impl Frame {
    pub fn reply(&self) -> schema::Reply<'_> {
        decode_reply(&self.header, &self.body).expect("a valid reply")
    }

    /// The error's code and message, if this is an error reply.
    pub fn error(&self) -> Option<(schema::ErrorCode, String)> {
        let e = self.reply().answer_as_error()?;
        Some((e.code(), e.message().unwrap_or("").to_string()))
    }

    pub fn value(&self) -> Option<Vec<u8>> {
        let v = self.reply().answer_as_value().expect("a Value reply");
        v.found()
            .then(|| v.value().map(|b| b.bytes().to_vec()).unwrap_or_default())
    }

    pub fn int(&self) -> i64 {
        self.reply().answer_as_int().expect("an Int reply").value()
    }

    pub fn done(&self) -> bool {
        self.reply()
            .answer_as_done()
            .expect("a Done reply")
            .applied()
    }

    pub fn payload(&self) -> Vec<u8> {
        let c = self.reply().answer_as_call_reply().expect("a CallReply");
        c.payload().map(|p| p.bytes().to_vec()).unwrap_or_default()
    }
}

impl RawRpc {
    pub fn tcp(port: u16) -> RawRpc {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the RPC port");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_nodelay(true).unwrap();
        Self::over(Box::new(s))
    }

    pub fn unix(path: &std::path::Path) -> RawRpc {
        let s = UnixStream::connect(path).expect("connect to the RPC socket");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Self::over(Box::new(s))
    }

    fn over(stream: Box<dyn Stream>) -> RawRpc {
        RawRpc {
            stream,
            writer: RequestWriter::new(),
            next_id: 1,
        }
    }

    /// Sends the operation `build` makes, with a deadline (0: none);
    /// returns its request id.
    pub fn send_with(
        &mut self,
        deadline_ms: u64,
        build: impl FnOnce(&mut RequestWriter) -> OpBody,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let op = build(&mut self.writer);
        let mut frame = Vec::new();
        self.writer.finish(&mut frame, id, deadline_ms, 0, op);
        self.stream.write_all(&frame).unwrap();
        id
    }

    pub fn send(&mut self, build: impl FnOnce(&mut RequestWriter) -> OpBody) -> u64 {
        self.send_with(0, build)
    }

    /// The next reply frame; None at end of stream.
    pub fn read(&mut self) -> Option<Frame> {
        read_frame(&mut self.stream)
    }

    /// Sends one request and reads its (only) reply.
    pub fn call(&mut self, build: impl FnOnce(&mut RequestWriter) -> OpBody) -> Frame {
        let id = self.send(build);
        let frame = self.read().expect("a reply");
        assert_eq!(frame.header.id, id, "the reply names its request");
        frame
    }
}

/// The next reply frame on `stream` (a connection whose requests are
/// written elsewhere); None at end of stream.
pub fn read_frame(stream: &mut impl Read) -> Option<Frame> {
    let mut head = [0u8; HEADER_LEN];
    stream.read_exact(&mut head).ok()?;
    assert_eq!(head[0], citadel_proto::rpc::MAGIC, "a reply frame's magic");
    let header = header_of(&head);
    let mut body = vec![0u8; header.body_len as usize];
    stream.read_exact(&mut body).ok()?;
    Some(Frame { header, body })
}

/// The header of a frame whose body is still to be read.
fn header_of(head: &[u8; HEADER_LEN]) -> FrameHeader {
    FrameHeader {
        flags: head[2],
        method: citadel_proto::rpc::Method::from_code(head[3]).expect("a known method"),
        body_len: u32::from_le_bytes([head[4], head[5], head[6], head[7]]),
        id: u64::from_le_bytes(head[8..16].try_into().unwrap()),
    }
}
