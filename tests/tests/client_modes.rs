//! Connection modes as Redis clients see them: CLIENT LIST's `flags`
//! against a real redis-server (MULTI, tracking, NO-EVICT), and CLIENT
//! NO-TOUCH, whose commands leave the keys' access frequency alone; and
//! CLIENT LIST's `qbuf`, the input a connection holds unrun.

use citadel_tests::reference::{encode_command, RedisServer};
use citadel_tests::{RespReader, Server};

fn send(r: &mut RespReader, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.send(&encode_command(&args));
    String::from_utf8_lossy(&r.raw_reply().expect("server closed the connection")).into_owned()
}

/// `field=` of a CLIENT INFO / CLIENT LIST line (inside EXEC's reply too).
fn line_field(line: &str, field: &str) -> Option<String> {
    let at = line.find(&format!(" {field}="))? + field.len() + 2;
    Some(line[at..].split(' ').next().unwrap_or_default().to_owned())
}

/// The `flags=` field of a CLIENT INFO line.
fn flags(info: &str) -> String {
    line_field(info, "flags").expect("a flags field")
}

#[test]
fn client_list_flags_are_redis_flags() {
    let redis = RedisServer::start();
    let citadel = Server::start(&[]);
    let mut want = RespReader::new(redis.raw());
    let mut got = RespReader::new(citadel.raw());
    let steps: &[&[&str]] = &[
        &["CLIENT", "INFO"],
        &["CLIENT", "NO-EVICT", "on"],
        &["CLIENT", "INFO"],
        &["CLIENT", "TRACKING", "on"],
        &["CLIENT", "INFO"],
        &["CLIENT", "TRACKING", "off"],
        &["CLIENT", "TRACKING", "on", "BCAST"],
        &["CLIENT", "INFO"],
        &["MULTI"],
        &["CLIENT", "INFO"],
        &["EXEC"],
        &["CLIENT", "INFO"],
        &["MULTI"],
        &["DISCARD"],
        &["CLIENT", "NO-EVICT", "off"],
        &["CLIENT", "TRACKING", "off"],
        &["CLIENT", "INFO"],
    ];
    let mut seen = Vec::new();
    for step in steps {
        let (a, b) = (send(&mut want, step), send(&mut got, step));
        if a.contains(" flags=") {
            assert_eq!(flags(&b), flags(&a), "after {seen:?}");
        } else {
            assert_eq!(b, a, "{step:?}");
        }
        seen.push(step.join(" "));
    }
    assert_eq!(flags(&send(&mut got, &["CLIENT", "INFO"])), "N");
}

/// The cache's own access counter of `k` that eviction reads (DEBUG
/// OBJECT's `lru:` under an LFU policy). OBJECT FREQ shows the larger of
/// it and the hot-key window's count, which counts every request, NO-TOUCH
/// ones too (overload protection watches all traffic).
fn freq(r: &mut RespReader) -> u64 {
    let reply = send(r, &["DEBUG", "OBJECT", "k"]);
    let at = reply.find(" lru:").expect("an lru field") + " lru:".len();
    let digits: String = reply[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("DEBUG OBJECT: {reply:?}"))
}

#[test]
fn no_touch_reads_leave_the_access_frequency_alone() {
    let citadel = Server::start(&[
        "--maxmemory-policy",
        "allkeys-lfu",
        "--enable-debug-command",
        "local",
    ]);
    let mut quiet = RespReader::new(citadel.raw());
    let mut normal = RespReader::new(citadel.raw());
    assert_eq!(send(&mut quiet, &["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(send(&mut quiet, &["CLIENT", "NO-TOUCH", "on"]), "+OK\r\n");
    assert!(flags(&send(&mut quiet, &["CLIENT", "INFO"])).contains('T'));
    let before = freq(&mut quiet);
    // Pipelined (the fast path's reads) and one at a time (dispatch's).
    let burst: Vec<u8> = (0..2000)
        .flat_map(|_| encode_command(&[b"GET", b"k"]))
        .collect();
    quiet.send(&burst);
    for _ in 0..2000 {
        assert_eq!(quiet.raw_reply().unwrap(), b"$1\r\nv\r\n");
    }
    for _ in 0..200 {
        send(&mut quiet, &["STRLEN", "k"]);
        send(&mut quiet, &["APPEND", "k", ""]);
    }
    assert_eq!(
        freq(&mut quiet),
        before,
        "a NO-TOUCH client's reads and writes"
    );
    // TOUCH counts even under NO-TOUCH, as in Redis.
    // (Few: the counter saturates at a handful of levels.)
    for _ in 0..40 {
        send(&mut quiet, &["TOUCH", "k"]);
    }
    let touched = freq(&mut quiet);
    assert!(touched > before, "TOUCH: {before} -> {touched}");
    // Another client's reads count as usual.
    for _ in 0..4000 {
        send(&mut normal, &["GET", "k"]);
    }
    assert!(freq(&mut normal) > touched, "an ordinary client's reads");
}

/// `field=` of the CLIENT LIST line of the client named `name`.
fn list_field(r: &mut RespReader, name: &str, field: &str) -> Option<String> {
    let list = send(r, &["CLIENT", "LIST"]);
    let line = list
        .lines()
        .find(|l| l.contains(&format!(" name={name} ")))?;
    line_field(line, field)
}

/// Asks CLIENT LIST until `name`'s `qbuf` is `want` (the owning core
/// takes the bytes when it gets to them); panics after 10 s.
fn wait_qbuf(r: &mut RespReader, name: &str, want: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let qbuf = list_field(r, name, "qbuf");
        if qbuf == Some(want.to_string()) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: qbuf {qbuf:?}, not {want}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// CLIENT LIST's `qbuf` is the input a connection holds unrun: a partial
/// request, or a blocked command and the requests behind it; `qbuf-free`
/// the room left.
#[test]
fn client_list_shows_the_input_a_connection_holds() {
    let citadel = Server::start(&[]);
    let mut admin = RespReader::new(citadel.raw());
    let mut part = RespReader::new(citadel.raw());
    send(&mut part, &["CLIENT", "SETNAME", "part"]);
    assert_eq!(list_field(&mut admin, "part", "qbuf").as_deref(), Some("0"));
    let head = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc";
    part.send(head);
    wait_qbuf(&mut admin, "part", head.len());
    let free = list_field(&mut admin, "part", "qbuf-free").unwrap_or_default();
    assert!(free.parse::<usize>().is_ok(), "qbuf-free={free}");
    part.send(b"defghij\r\n");
    assert_eq!(part.raw_reply().as_deref(), Some(&b"+OK\r\n"[..]));
    wait_qbuf(&mut admin, "part", 0);
    // Blocked: the command (it runs again when woken) and what was
    // pipelined behind it wait, held.
    let mut blocked = encode_command(&[b"BLPOP", b"list", b"0"]);
    blocked.extend_from_slice(&encode_command(&[b"PING"]));
    part.send(&blocked);
    wait_qbuf(&mut admin, "part", blocked.len());
    send(&mut admin, &["RPUSH", "list", "x"]);
    assert!(part.raw_reply().is_some_and(|r| r.starts_with(b"*2")));
    assert_eq!(part.raw_reply().as_deref(), Some(&b"+PONG\r\n"[..]));
    wait_qbuf(&mut admin, "part", 0);
}

/// The `qbuf=` field of a CLIENT LIST/INFO line.
fn qbuf_of(line: &str) -> String {
    line_field(line, "qbuf").expect("a qbuf field")
}

/// A client's own CLIENT INFO / CLIENT LIST line shows, as `qbuf`, the
/// input its command is being run from (Redis's query buffer, trimmed
/// only after the input has run): the command itself, and what came with
/// it in the same write. Redis's own suite checks `qbuf=26` for a plain
/// CLIENT LIST.
#[test]
fn a_clients_own_line_shows_the_input_its_command_runs_from() {
    let redis = RedisServer::start();
    let citadel = Server::start(&[]);
    let mut servers = [
        ("redis", RespReader::new(redis.raw())),
        ("citadel", RespReader::new(citadel.raw())),
    ];
    let mut seen = Vec::new();
    for (name, r) in servers.iter_mut() {
        send(r, &["CLIENT", "SETNAME", "me"]);
        let info = qbuf_of(&send(r, &["CLIENT", "INFO"]));
        let list = send(r, &["CLIENT", "LIST"]);
        let own = list
            .lines()
            .find(|l| l.contains(" name=me "))
            .expect("its own line");
        let listed = qbuf_of(own);
        // A PING and the CLIENT INFO in one write.
        let mut two = encode_command(&[b"PING"]);
        two.extend_from_slice(&encode_command(&[b"CLIENT", b"INFO"]));
        r.send(&two);
        assert_eq!(r.raw_reply().as_deref(), Some(&b"+PONG\r\n"[..]), "{name}");
        let reply = r.raw_reply().expect("CLIENT INFO's reply");
        let batched = qbuf_of(&String::from_utf8_lossy(&reply));
        seen.push((info, listed, batched));
    }
    assert_eq!(seen[0], ("26".into(), "26".into(), "40".into()), "redis");
    assert_eq!(seen[1], seen[0], "citadel against redis");
}
