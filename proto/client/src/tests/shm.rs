//! The shared-memory transport against the mock server, through a bridge
//! that speaks the shm handshake and relays ring records to and from a
//! socket connection to the mock: streamed frames keep their order while
//! callers and the reader thread both read the reply ring, slow calls are
//! overtaken, and a connection that ends fails what is in flight.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_proto::envelope::Envelope;
use citadel_proto::ring::{Consumer, EventFd, Producer, SpinPolicy};
use citadel_proto::rpc::shm::{ShmChannel, ShmHello};
use citadel_proto::rpc::HEADER_LEN;

use super::mock::{Mock, TempDir};
use super::within;
use crate::{Client, Command, Endpoint, Error};

/// An shm handshake socket whose clients' rings are relayed to `mock`.
struct Bridge {
    endpoint: Endpoint,
    _dir: TempDir,
}

impl Bridge {
    fn to(mock: &Mock) -> Bridge {
        let Endpoint::Unix(target) = mock.endpoint.clone() else {
            panic!("bridge to a Unix mock");
        };
        let dir = TempDir::new("shm");
        let path = dir.0.join("shm.sock");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                let Ok(socket) = socket else { return };
                attach(socket, &target);
            }
        });
        Bridge {
            endpoint: Endpoint::shm(path),
            _dir: dir,
        }
    }
}

/// Grants `socket` a ring pair and relays it to a new mock connection.
fn attach(mut socket: UnixStream, target: &Path) {
    let mut hello = [0u8; 16];
    socket.read_exact(&mut hello).unwrap();
    let capacity = ShmHello::parse(&hello).unwrap().capacity;
    let channel = ShmChannel::create(capacity).unwrap();
    let doorbell = EventFd::new().unwrap();
    channel.grant(&socket, &doorbell).unwrap();
    let requests = Consumer::attach(channel.requests, doorbell);
    let replies = Producer::attach(channel.replies, channel.client_wake);
    let mock = UnixStream::connect(target).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let (to_mock, stop) = (mock.try_clone().unwrap(), Arc::clone(&done));
    std::thread::spawn(move || relay_requests(requests, to_mock, &stop));
    std::thread::spawn(move || {
        relay_replies(mock, replies);
        // The mock hung up: so does the "server" (the client sees EOF).
        done.store(true, Ordering::SeqCst);
        drop(socket);
    });
}

fn relay_requests(mut requests: Consumer, mut mock: UnixStream, done: &AtomicBool) {
    let mut frame = Vec::new();
    while !done.load(Ordering::SeqCst) {
        let Some(record) = requests.read().unwrap() else {
            let wait = Some(Duration::from_millis(20));
            requests.wait(SpinPolicy::PARK_AT_ONCE, wait).unwrap();
            continue;
        };
        frame.clear();
        record.copy_payload_into(&mut frame);
        requests.commit_read();
        if mock.write_all(&frame).is_err() {
            return;
        }
    }
}

fn relay_replies(mut mock: UnixStream, mut replies: Producer) {
    loop {
        let mut frame = vec![0u8; HEADER_LEN];
        if mock.read_exact(&mut frame).is_err() {
            return;
        }
        let len = u32::from_le_bytes(frame[4..8].try_into().unwrap()) as usize;
        frame.resize(HEADER_LEN + len, 0);
        if mock.read_exact(&mut frame[HEADER_LEN..]).is_err() {
            return;
        }
        let id = u64::from_le_bytes(frame[8..16].try_into().unwrap());
        while replies.send(&Envelope::reply(id), &frame).is_err() {
            std::thread::yield_now();
        }
    }
}

#[test]
fn streams_keep_their_order_and_slow_calls_are_overtaken() {
    let mock = Mock::unix();
    let bridge = Bridge::to(&mock);
    let client = Client::connect(bridge.endpoint.clone()).unwrap();
    assert!(client.set("k", "v").unwrap());
    for _ in 0..20 {
        let mut stream = client.call_stream("stream", b"", "n=40").unwrap();
        let indexes: Vec<u32> = stream.by_ref().map(|p| p.index).collect();
        assert_eq!(indexes, (0..40).collect::<Vec<_>>());
        assert_eq!(stream.finish().unwrap(), b"{\"frames\":40}");
    }
    let started = Instant::now();
    let slow = Command::Call {
        name: "slow",
        payload: b"400",
        options: "",
    };
    let slow = client.send(&slow).unwrap();
    assert_eq!(client.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert!(started.elapsed() < Duration::from_millis(300));
    assert_eq!(slow.wait().unwrap().into_call_reply().unwrap(), b"400");
}

#[test]
fn a_connection_that_ends_fails_what_is_in_flight() {
    let mock = Mock::unix();
    let bridge = Bridge::to(&mock);
    let client = Arc::new(Client::connect(bridge.endpoint.clone()).unwrap());
    let waiting = Arc::clone(&client);
    let slow = std::thread::spawn(move || waiting.call("slow", b"5000"));
    let died = within(Duration::from_secs(5), {
        let client = Arc::clone(&client);
        move || {
            while client.in_flight() == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            client.call("die", b"").unwrap_err()
        }
    });
    assert!(matches!(died, Error::Closed), "{died}");
    let slow = within(Duration::from_secs(5), move || slow.join().unwrap());
    assert!(matches!(slow, Err(Error::Closed)), "{slow:?}");
    assert!(client.is_closed());
}
