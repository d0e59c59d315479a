//! The RPC's shared-memory transport end to end: handshake over the shm
//! socket, frames through the rings, many requests in flight, a client
//! killed with SIGKILL in the middle of its traffic (the server reclaims
//! its rings and goes on serving), RESP seeing the same data.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use citadel_proto::rpc::shm::ShmLink;
use citadel_proto::rpc::{decode_reply, Condition, FrameHeader, RequestWriter, HEADER_LEN};
use citadel_tests::{redis, Server};

/// A blocking shm client for the tests.
struct ShmClient {
    link: ShmLink,
    writer: RequestWriter,
    frame: Vec<u8>,
    next_id: u64,
}

impl ShmClient {
    fn connect(path: &Path) -> ShmClient {
        ShmClient {
            link: ShmLink::connect(path, 0).expect("shm handshake"),
            writer: RequestWriter::new(),
            frame: Vec::new(),
            next_id: 1,
        }
    }

    fn send(
        &mut self,
        build: impl FnOnce(&mut RequestWriter) -> citadel_proto::rpc::OpBody,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let op = build(&mut self.writer);
        self.frame.clear();
        self.writer.finish(&mut self.frame, id, 0, 0, op);
        self.link
            .send_frame(&self.frame, Duration::from_secs(10))
            .unwrap();
        id
    }

    /// The next reply: (request id, its frame).
    fn read(&mut self) -> (u64, Vec<u8>) {
        let mut out = Vec::new();
        assert!(
            self.link
                .recv_frame(&mut out, Some(Duration::from_secs(20)))
                .unwrap(),
            "a reply within 20 s"
        );
        let header = FrameHeader::parse(&out).unwrap().unwrap().0;
        (header.id, out)
    }
}

fn value(frame: &[u8]) -> Option<Vec<u8>> {
    let header = FrameHeader::parse(frame).unwrap().unwrap().0;
    let reply = decode_reply(&header, &frame[HEADER_LEN..]).unwrap();
    let v = reply.answer_as_value().expect("a Value");
    v.found()
        .then(|| v.value().map(|b| b.bytes().to_vec()).unwrap_or_default())
}

fn done(frame: &[u8]) -> bool {
    let header = FrameHeader::parse(frame).unwrap().unwrap().0;
    let reply = decode_reply(&header, &frame[HEADER_LEN..]).unwrap();
    reply.answer_as_done().expect("a Done").applied()
}

fn start() -> (Server, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("shm.sock");
    let server = Server::start(&["--shm-socket", sock.to_str().unwrap()]);
    (server, dir, sock)
}

#[test]
fn frames_travel_through_the_rings() {
    let (server, _dir, sock) = start();
    let mut c = ShmClient::connect(&sock);
    c.send(|w| w.set(b"shm-key", b"through the ring", 0, Condition::Always));
    assert!(done(&c.read().1));
    c.send(|w| w.get(b"shm-key"));
    assert_eq!(
        value(&c.read().1).as_deref(),
        Some(&b"through the ring"[..])
    );
    let mut con = server.client();
    let resp: String = redis::cmd("GET").arg("shm-key").query(&mut con).unwrap();
    assert_eq!(resp, "through the ring");
    // Many in flight, and values close to the ring's limit.
    let big = vec![7u8; 300 << 10];
    c.send(|w| w.set(b"big", &big, 0, Condition::Always));
    assert!(done(&c.read().1));
    let ids: Vec<u64> = (0..500).map(|_| c.send(|w| w.get(b"big"))).collect();
    for id in ids {
        let (got, frame) = c.read();
        assert_eq!(got, id);
        assert_eq!(value(&frame).map(|v| v.len()), Some(big.len()));
    }
    // A reply too large for the ring is an error frame, not a hang.
    let huge = vec![1u8; 700 << 10];
    let _: () = redis::cmd("SET")
        .arg("huge")
        .arg(&huge)
        .query(&mut con)
        .unwrap();
    c.send(|w| w.get(b"huge"));
    let (_, frame) = c.read();
    let header = FrameHeader::parse(&frame).unwrap().unwrap().0;
    let reply = decode_reply(&header, &frame[HEADER_LEN..]).unwrap();
    let e = reply.answer_as_error().expect("an error");
    assert_eq!(e.code(), citadel_proto::rpc::ErrorCode::TooLarge);
    // A second client gets its own rings.
    let mut d = ShmClient::connect(&sock);
    d.send(|w| w.get(b"shm-key"));
    assert_eq!(
        value(&d.read().1).as_deref(),
        Some(&b"through the ring"[..])
    );
}

/// The child: blasts SETs through the shm transport until killed.
#[test]
fn shm_child_blaster() {
    let Ok(path) = std::env::var("CITADEL_SHM_CHILD") else {
        return;
    };
    let mut c = ShmClient::connect(Path::new(&path));
    println!("attached");
    for i in 0u64.. {
        let key = format!("blast:{}", i % 1000);
        c.send(|w| w.set(key.as_bytes(), b"x", 0, Condition::Always));
        if i % 64 == 63 {
            for _ in 0..64 {
                c.read();
            }
        }
    }
}

fn shm_clients(con: &mut redis::Connection) -> usize {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(con).unwrap();
    list.lines().filter(|l| l.contains("addr=shm")).count()
}

#[test]
fn a_client_killed_mid_traffic_loses_nobody_else_anything() {
    let (server, _dir, sock) = start();
    let mut con = server.client();
    let mut survivor = ShmClient::connect(&sock);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "shm_child_blaster", "--nocapture"])
        .env("CITADEL_SHM_CHILD", &sock)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Let it get going, then kill it in the middle of its traffic.
    let deadline = Instant::now() + Duration::from_secs(20);
    while redis::cmd("EXISTS")
        .arg("blast:500")
        .query::<i64>(&mut con)
        .unwrap()
        == 0
    {
        assert!(Instant::now() < deadline, "the child never wrote");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(shm_clients(&mut con), 2);
    let info: String = redis::cmd("INFO").arg("rpc").query(&mut con).unwrap();
    assert!(info.contains("rpc_shm_clients:2\r\n"), "{info}");
    child.kill().unwrap();
    child.wait().unwrap();
    // Its rings are reclaimed; everyone else is served as before.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shm_clients(&mut con) != 1 {
        assert!(Instant::now() < deadline, "the dead client was not dropped");
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..100 {
        let key = format!("after:{i}");
        survivor.send(|w| w.set(key.as_bytes(), b"ok", 0, Condition::Always));
        assert!(done(&survivor.read().1));
    }
    let n: i64 = redis::cmd("EXISTS")
        .arg("after:99")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    // And new clients attach.
    let mut late = ShmClient::connect(&sock);
    late.send(|w| w.get(b"after:5"));
    assert_eq!(value(&late.read().1).as_deref(), Some(&b"ok"[..]));
}

#[test]
fn garbage_in_the_ring_gets_error_frames() {
    let (_server, _dir, sock) = start();
    let mut c = ShmClient::connect(&sock);
    // A record that is not a frame, one with a lying length, one whose
    // body is garbage: an error frame each, and the link keeps working.
    let mut lying = vec![b'C', 1, 0, 1];
    lying.extend_from_slice(&1000u32.to_le_bytes());
    lying.extend_from_slice(&[0; 16]);
    let mut garbage_body = vec![b'C', 1, 0, 2];
    garbage_body.extend_from_slice(&8u32.to_le_bytes());
    garbage_body.extend_from_slice(&5u64.to_le_bytes());
    garbage_body.extend_from_slice(&[0; 8]);
    garbage_body.extend_from_slice(&[0xff; 8]);
    for bytes in [&b"not a frame at all"[..], &lying, &garbage_body] {
        c.link.send_frame(bytes, Duration::from_secs(5)).unwrap();
        let (_, frame) = c.read();
        let header = FrameHeader::parse(&frame).unwrap().unwrap().0;
        let reply = decode_reply(&header, &frame[HEADER_LEN..]).unwrap();
        assert!(reply.answer_as_error().is_some(), "an error for {bytes:?}");
    }
    c.send(|w| w.set(b"after-garbage", b"ok", 0, Condition::Always));
    assert!(done(&c.read().1));
}
