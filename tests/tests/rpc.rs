//! The FlatBuffers RPC front door end to end: the real server on its RPC
//! port (and Unix socket), every method, out-of-order replies, deadlines,
//! batches, RESP and RPC seeing the same data, hostile frames.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use citadel_proto::rpc::{schema::ErrorCode, Condition, Method, MAGIC, VERSION};
use citadel_tests::redis;
use citadel_tests::rpc::RawRpc;
use citadel_tests::{echo_plugin_bin, Server};

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn every_method_answers_and_resp_sees_the_same_data() {
    let server = Server::start(&[]);
    let mut rpc = RawRpc::tcp(server.rpc_port);
    let mut con = server.client();

    assert!(rpc
        .call(|w| w.set(b"k", b"v1", 0, Condition::Always))
        .done());
    assert_eq!(
        rpc.call(|w| w.get(b"k")).value().as_deref(),
        Some(&b"v1"[..])
    );
    assert_eq!(rpc.call(|w| w.get(b"nope")).value(), None);
    let resp: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(resp.as_deref(), Some("v1"));
    let _: () = redis::cmd("SET")
        .arg("r")
        .arg("from-resp")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        rpc.call(|w| w.get(b"r")).value().as_deref(),
        Some(&b"from-resp"[..])
    );

    // NX / XX.
    assert!(!rpc.call(|w| w.set(b"k", b"x", 0, Condition::Nx)).done());
    assert!(rpc.call(|w| w.set(b"k", b"v2", 0, Condition::Xx)).done());
    assert!(!rpc
        .call(|w| w.set(b"absent", b"x", 0, Condition::Xx))
        .done());
    assert!(rpc.call(|w| w.set(b"fresh", b"x", 0, Condition::Nx)).done());

    // TTLs.
    assert_eq!(rpc.call(|w| w.ttl(b"k")).int(), -1);
    assert_eq!(rpc.call(|w| w.ttl(b"absent")).int(), -2);
    assert!(rpc.call(|w| w.expire(b"k", 50_000)).done());
    let left = rpc.call(|w| w.ttl(b"k")).int();
    assert!((49_000..=50_000).contains(&left), "{left}");
    let pttl: i64 = redis::cmd("PTTL").arg("k").query(&mut con).unwrap();
    assert!((49_000..=50_000).contains(&pttl), "{pttl}");
    assert!(rpc.call(|w| w.expire(b"k", 0)).done(), "ttl 0 persists");
    assert_eq!(rpc.call(|w| w.ttl(b"k")).int(), -1);
    assert!(!rpc.call(|w| w.expire(b"absent", 10)).done());
    assert!(rpc
        .call(|w| w.set(b"short", b"x", 100, Condition::Always))
        .done());
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(rpc.call(|w| w.get(b"short")).value(), None, "expired");

    // Counters.
    assert_eq!(rpc.call(|w| w.incr(b"n", 5)).int(), 5);
    assert_eq!(rpc.call(|w| w.incr(b"n", -7)).int(), -2);
    let n: i64 = redis::cmd("INCR").arg("n").query(&mut con).unwrap();
    assert_eq!(n, -1);
    let (code, _) = rpc
        .call(|w| w.incr(b"k", 1))
        .error()
        .expect("not an integer");
    assert_eq!(code, ErrorCode::NotInteger);

    // Multi-key.
    let pairs: [(&[u8], &[u8]); 3] = [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")];
    assert!(rpc.call(|w| w.mset(pairs)).done());
    let keys: [&[u8]; 4] = [b"a", b"b", b"zz", b"c"];
    let reply = rpc.call(|w| w.mget(keys));
    let values: Vec<Option<Vec<u8>>> = reply
        .reply()
        .answer_as_values()
        .unwrap()
        .values()
        .unwrap()
        .iter()
        .map(|v| v.found().then(|| v.value().unwrap().bytes().to_vec()))
        .collect();
    assert_eq!(
        values,
        vec![
            Some(b"1".to_vec()),
            Some(b"2".to_vec()),
            None,
            Some(b"3".to_vec())
        ]
    );
    assert_eq!(rpc.call(|w| w.exists(keys)).int(), 3);
    assert_eq!(rpc.call(|w| w.delete([&b"a"[..], b"zz"])).int(), 1);
    let exists: i64 = redis::cmd("EXISTS").arg("a").query(&mut con).unwrap();
    assert_eq!(exists, 0);

    // SCAN pages through every key, with a pattern.
    for i in 0..50 {
        let key = format!("scan:{i}");
        rpc.call(|w| w.set(key.as_bytes(), b"x", 0, Condition::Always));
    }
    let (mut cursor, mut seen) = (0u64, std::collections::BTreeSet::new());
    loop {
        let page = rpc.call(|w| w.scan(cursor, Some("scan:*"), 7));
        let page = page.reply();
        let page = page.answer_as_scan_page().unwrap();
        for k in page.keys().unwrap() {
            seen.insert(String::from_utf8(k.key().unwrap().bytes().to_vec()).unwrap());
        }
        cursor = page.cursor();
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 50);

    // Stats and hello.
    let stats = rpc.call(|w| w.stats(Some("keyspace")));
    let names: Vec<String> = stats
        .reply()
        .answer_as_stats_reply()
        .unwrap()
        .stats()
        .unwrap()
        .iter()
        .map(|s| s.name().unwrap().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "db0"), "{names:?}");
    let hello = rpc.call(|w| w.hello(1, Some("svc-a"), None, ["batch", "shiny"]));
    let welcome = hello.reply();
    let welcome = welcome.answer_as_welcome().unwrap();
    assert_eq!(welcome.version(), 1);
    let granted: Vec<&str> = welcome.features().unwrap().iter().collect();
    assert_eq!(granted, vec!["batch"]);
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    assert!(list.contains("name=svc-a"), "{list}");
    let (code, _) = rpc.call(|w| w.hello(9, None, None, [])).error().unwrap();
    assert_eq!(code, ErrorCode::Version);
}

#[test]
fn a_batch_is_one_frame_with_an_outcome_per_operation() {
    let server = Server::start(&[]);
    let mut rpc = RawRpc::tcp(server.rpc_port);
    let reply = rpc.call(|w| {
        let ops = [
            w.set(b"b1", b"one", 0, Condition::Always),
            w.get(b"b1"),
            w.incr(b"b1", 1),
            w.call("echo", b"x", ""),
            w.get(b"missing"),
        ];
        for op in ops {
            w.push_op(op);
        }
        w.batch()
    });
    assert_eq!(reply.header.method, Method::Batch);
    let r = reply.reply();
    let outcomes = r.answer_as_batch_reply().unwrap().outcomes().unwrap();
    assert_eq!(outcomes.len(), 5);
    assert!(outcomes.get(0).answer_as_done().unwrap().applied());
    let v = outcomes.get(1).answer_as_value().unwrap();
    assert_eq!(v.value().unwrap().bytes(), b"one");
    assert_eq!(
        outcomes.get(2).answer_as_error().unwrap().code(),
        ErrorCode::NotInteger
    );
    assert_eq!(
        outcomes.get(3).answer_as_error().unwrap().code(),
        ErrorCode::Invalid
    );
    assert!(!outcomes.get(4).answer_as_value().unwrap().found());
}

#[test]
fn a_request_past_its_deadline_is_refused_unexecuted() {
    let server = Server::start(&[]);
    let mut rpc = RawRpc::tcp(server.rpc_port);
    rpc.send_with(now_ms() - 1_000, |w| {
        w.set(b"late", b"x", 0, Condition::Always)
    });
    let frame = rpc.read().unwrap();
    let (code, message) = frame.error().expect("a deadline error");
    assert_eq!(code, ErrorCode::Deadline, "{message}");
    assert_eq!(rpc.call(|w| w.get(b"late")).value(), None, "not executed");
    // A deadline in the future runs.
    rpc.send_with(now_ms() + 60_000, |w| {
        w.set(b"late", b"x", 0, Condition::Always)
    });
    assert!(rpc.read().unwrap().done());
    // INFO rpc counts them (and records every request's priority class).
    let info: String = redis::cmd("INFO")
        .arg("rpc")
        .query(&mut server.client())
        .unwrap();
    assert!(info.contains("rpc_deadline_refused:1\r\n"), "{info}");
    assert!(info.contains("rpc_requests:3\r\n"), "{info}");
    assert!(info.contains("rpc_priority_default:3\r\n"), "{info}");
}

fn echo_config(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("echo.toml");
    std::fs::write(
        &path,
        format!(
            "[[plugin]]\nname = \"echo\"\nexec = \"{}\"\ncores = \"none\"\n",
            echo_plugin_bin().display()
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn a_slow_call_does_not_hold_back_a_get_on_the_same_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&["--config", &echo_config(&dir)]);
    let mut rpc = RawRpc::tcp(server.rpc_port);
    assert_eq!(rpc.call(|w| w.call("echo", b"hi", "")).payload(), b"HI");
    rpc.call(|w| w.set(b"fast", b"yes", 0, Condition::Always));
    let started = Instant::now();
    let slow = rpc.send(|w| w.call("echo", b"SLEEP 1500", ""));
    let fast = rpc.send(|w| w.get(b"fast"));
    let first = rpc.read().unwrap();
    assert_eq!(first.header.id, fast, "the GET is answered first");
    assert_eq!(first.value().as_deref(), Some(&b"yes"[..]));
    assert!(started.elapsed() < Duration::from_millis(1_000));
    let second = rpc.read().unwrap();
    assert_eq!(second.header.id, slow);
    assert_eq!(second.payload(), b"SLEPT 1500");
    // Unknown names are typed errors.
    let (code, message) = rpc.call(|w| w.call("nope", b"", "")).error().unwrap();
    assert_eq!(code, ErrorCode::Plugin, "{message}");
    // Many calls in flight at once, answered by id.
    let ids: Vec<u64> = (0..50)
        .map(|i| {
            let payload = format!("p{i}");
            rpc.send(|w| w.call("echo", payload.as_bytes(), ""))
        })
        .collect();
    let mut got = std::collections::HashMap::new();
    for _ in 0..ids.len() {
        let f = rpc.read().unwrap();
        got.insert(f.header.id, f.payload());
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(got[id], format!("P{i}").into_bytes());
    }
}

#[test]
fn rpc_is_served_on_a_unix_socket_too() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("rpc.sock");
    let server = Server::start(&["--rpc-unixsocket", sock.to_str().unwrap()]);
    let mut rpc = RawRpc::unix(&sock);
    assert!(rpc
        .call(|w| w.set(b"u", b"over-unix", 0, Condition::Always))
        .done());
    let mut tcp = RawRpc::tcp(server.rpc_port);
    assert_eq!(
        tcp.call(|w| w.get(b"u")).value().as_deref(),
        Some(&b"over-unix"[..])
    );
    let record = server.wait_for_record();
    assert!(
        record.contains(&format!("rpc=127.0.0.1:{}", server.rpc_port)),
        "{record}"
    );
    assert!(record.contains("rpc_unix="), "{record}");
}

#[test]
fn a_password_is_required_when_the_server_has_one() {
    let server = Server::start(&["--requirepass", "s3cret"]);
    let mut rpc = RawRpc::tcp(server.rpc_port);
    let (code, _) = rpc.call(|w| w.get(b"k")).error().unwrap();
    assert_eq!(code, ErrorCode::Auth);
    let (code, _) = rpc
        .call(|w| w.hello(1, None, Some("wrong"), []))
        .error()
        .unwrap();
    assert_eq!(code, ErrorCode::Auth);
    let ok = rpc.call(|w| w.hello(1, None, Some("s3cret"), []));
    assert!(ok.error().is_none());
    assert_eq!(rpc.call(|w| w.get(b"k")).value(), None);
}

/// Writes raw bytes on a fresh connection; returns the reply frames read
/// until the server closes the connection or goes quiet.
fn hostile(server: &Server, bytes: &[u8]) -> (Vec<citadel_tests::rpc::Frame>, bool) {
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", server.rpc_port)).unwrap();
    raw.write_all(bytes).unwrap();
    // Read until EOF (a close) or a quiet 300 ms (the connection stays).
    raw.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut frames = Vec::new();
    let mut closed = false;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match raw.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    let mut at = 0;
    while buf.len() >= at + 24 {
        let len = 24 + u32::from_le_bytes(buf[at + 4..at + 8].try_into().unwrap()) as usize;
        if buf.len() < at + len {
            break;
        }
        let header = citadel_proto::rpc::FrameHeader::parse(&buf[at..at + len])
            .unwrap()
            .unwrap()
            .0;
        frames.push(citadel_tests::rpc::Frame {
            header,
            body: buf[at + 24..at + len].to_vec(),
        });
        at += len;
    }
    (frames, closed)
}

fn frame(method: u8, id: u64, body: &[u8]) -> Vec<u8> {
    let mut f = vec![MAGIC, VERSION, 0, method];
    f.extend_from_slice(&(body.len() as u32).to_le_bytes());
    f.extend_from_slice(&id.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(body);
    f
}

#[test]
fn hostile_frames_get_errors_or_a_close_never_a_hang() {
    let server = Server::start(&[]);
    // Bad magic: an error frame, then the connection is closed.
    let (frames, closed) = hostile(&server, b"GET k\r\n and more");
    assert_eq!(frames[0].error().unwrap().0, ErrorCode::BadFrame);
    assert!(closed);
    // A later version.
    let mut v2 = frame(1, 7, &[]);
    v2[1] = 2;
    let (frames, closed) = hostile(&server, &v2);
    assert_eq!(frames[0].error().unwrap().0, ErrorCode::Version);
    assert!(closed);
    // A lying length past the limit: TooLarge, then close.
    let mut huge = frame(1, 8, &[]);
    huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let (frames, closed) = hostile(&server, &huge);
    assert_eq!(frames[0].error().unwrap().0, ErrorCode::TooLarge);
    assert_eq!(frames[0].header.id, 8);
    assert!(closed);
    // An unknown method: an error for that id; the connection stays usable.
    let mut two = frame(99, 9, &[1, 2, 3, 4]);
    let mut rpc_ok = citadel_proto::rpc::RequestWriter::new();
    let op = rpc_ok.get(b"k");
    rpc_ok.finish(&mut two, 10, 0, 0, op);
    let (frames, closed) = hostile(&server, &two);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0].error().unwrap().0, ErrorCode::UnknownMethod);
    assert_eq!(frames[1].header.id, 10);
    assert!(!closed);
    // Garbage bodies and bad offsets: an error per frame, still open.
    let mut bad = frame(1, 11, &[0xff; 16]);
    bad.extend(frame(2, 12, &[4, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]));
    bad.extend(frame(1, 13, &[]));
    let (frames, closed) = hostile(&server, &bad);
    assert_eq!(frames.len(), 3, "{frames:?}");
    for f in &frames {
        assert_eq!(f.error().unwrap().0, ErrorCode::BadFrame, "{f:?}");
    }
    assert!(!closed);
    // Random bytes after a valid magic and version, many times: the
    // server answers or closes, and keeps serving everyone else.
    let mut seed = 0x9e3779b97f4a7c15u64;
    for round in 0..200u64 {
        let mut junk = frame((round % 16) as u8, round, &[]);
        let len = (round * 7 % 300) as usize;
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            junk.push(seed as u8);
        }
        let body_len = (junk.len() - 24) as u32;
        junk[4..8].copy_from_slice(&body_len.to_le_bytes());
        let mut c = std::net::TcpStream::connect(("127.0.0.1", server.rpc_port)).unwrap();
        c.write_all(&junk).unwrap();
    }
    let mut rpc = RawRpc::tcp(server.rpc_port);
    rpc.call(|w| w.set(b"alive", b"1", 0, Condition::Always));
    assert_eq!(
        rpc.call(|w| w.get(b"alive")).value().as_deref(),
        Some(&b"1"[..])
    );
}

#[test]
fn a_client_that_never_reads_is_dropped_without_hurting_others() {
    let server = Server::start(&["--client-output-limit", "1mb"]);
    let mut setter = RawRpc::tcp(server.rpc_port);
    let big = vec![b'x'; 256 << 10];
    setter.call(|w| w.set(b"big", &big, 0, Condition::Always));
    let mut hog = std::net::TcpStream::connect(("127.0.0.1", server.rpc_port)).unwrap();
    let mut w = citadel_proto::rpc::RequestWriter::new();
    let mut frames = Vec::new();
    for id in 0..200 {
        let op = w.get(b"big");
        w.finish(&mut frames, id, 0, 0, op);
    }
    hog.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = hog.write_all(&frames);
    // Everyone else is still served.
    assert_eq!(
        setter.call(|w| w.get(b"big")).value().map(|v| v.len()),
        Some(big.len())
    );
}

#[test]
fn a_thousand_rpc_connections_at_once() {
    let server = Server::start(&[]);
    let mut conns: Vec<RawRpc> = (0..1000).map(|_| RawRpc::tcp(server.rpc_port)).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        let key = format!("c{i}");
        c.send(|w| w.set(key.as_bytes(), key.as_bytes(), 0, Condition::Always));
    }
    for c in conns.iter_mut() {
        assert!(c.read().unwrap().done());
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let key = format!("c{}", (i + 1) % 1000);
        assert_eq!(
            c.call(|w| w.get(key.as_bytes())).value(),
            Some(key.into_bytes())
        );
    }
}
