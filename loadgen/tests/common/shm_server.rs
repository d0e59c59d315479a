//! The in-process RPC server's shared-memory door (`--shm` tests): the CSHM handshake,
//! then one thread per client answering the request ring's frames on the reply ring with
//! the socket server's `reply`. The frames read in one turn are answered in REVERSE
//! order, so the loadgen's id matching is exercised here too. It polls (yielding, then
//! napping) instead of parking, and reuses its buffers: nothing is allocated per request.

use std::io::Read;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use citadel_proto::envelope::Envelope;
use citadel_proto::ring::{Consumer, EventFd, Producer};
use citadel_proto::rpc::shm::{ShmChannel, ShmHello};
use citadel_proto::rpc::{FrameHeader, ReplyWriter};

use super::rpc_server::reply;

/// Records read per turn before answering them.
const PER_TURN: usize = 64;

/// Serves shm clients attaching at `path` until the test process exits.
pub fn listen(path: &Path) {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || serve(s));
        }
    });
}

fn serve(mut socket: UnixStream) {
    let mut hello = [0u8; 16];
    socket.read_exact(&mut hello).expect("shm hello");
    let hello = ShmHello::parse(&hello).expect("valid shm hello");
    let channel = ShmChannel::create(hello.capacity).unwrap();
    let doorbell = EventFd::new().unwrap();
    channel.grant(&socket, &doorbell).unwrap();
    socket.set_nonblocking(true).unwrap();
    let mut requests = Consumer::attach(channel.requests, doorbell);
    let mut replies = Producer::attach(channel.replies, channel.client_wake);
    let mut input = Vec::with_capacity(1 << 20);
    let mut frames: Vec<(usize, usize)> = Vec::with_capacity(PER_TURN);
    let mut out = Vec::with_capacity(1 << 16);
    let mut w = ReplyWriter::new();
    let mut idle = 0u32;
    loop {
        input.clear();
        frames.clear();
        while frames.len() < PER_TURN {
            let Some(record) = requests.read().expect("sound request ring") else {
                break;
            };
            let at = input.len();
            record.copy_payload_into(&mut input);
            frames.push((at, input.len()));
        }
        requests.commit_read();
        if frames.is_empty() {
            idle += 1;
            if idle.is_multiple_of(256) && client_gone(&mut socket) {
                return;
            }
            if idle < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
            continue;
        }
        idle = 0;
        for &(start, end) in frames.iter().rev() {
            out.clear();
            reply(&mut w, &input[start..end], &mut out);
            let id = FrameHeader::parse(&out).unwrap().unwrap().0.id;
            while replies.send(&Envelope::reply(id), &out).is_err() {
                if client_gone(&mut socket) {
                    return;
                }
                std::thread::yield_now();
            }
        }
    }
}

/// The client closed its handshake socket (it never writes on it).
fn client_gone(socket: &mut UnixStream) -> bool {
    let mut buf = [0u8; 16];
    !matches!(socket.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}
