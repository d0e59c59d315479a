//! ACL users against a real redis-server: the same ACL SETUSER rules on
//! both, then commands as that user (replies byte for byte: NOPERM texts,
//! ACL GETUSER / LIST / CAT / DRYRUN output, MULTI/EXEC and script
//! refusals, Pub/Sub channels); ACL LOG's entries field by field; the ACL
//! file's SAVE/LOAD round trip; a user changed on one core while its
//! clients are connected on others.

use std::io::{Read, Write};
use std::time::Duration;

use citadel_tests::differential::Pair;
use citadel_tests::{redis, Server};

// Rules are chosen to leave at most one single command (or a container
// then its subcommands) in the description: Redis lists single commands in
// its hash table's order, which changes from run to run.

/// Connection 1 authenticated as `user` on both servers.
fn login(pair: &mut Pair, user: &str, pass: &str) -> usize {
    let conn = pair.connect();
    pair.same_str_on(conn, &["AUTH", user, pass]);
    conn
}

#[test]
fn rules_and_their_descriptions_match_redis() {
    let mut pair = Pair::start();
    for rules in [
        &["bob"][..],
        &["bob", "on", ">pw", "~k*", "%R~r*", "%W~w*", "&ch*", "+get"],
        &["bob", "-get", "+config|get"],
        &["bob", "-@all", "+@string", "-set"],
        &["bob", "+@all", "-@dangerous"],
        &["bob", "reset", "+@all", "-flushall"],
        &["bob", "reset", "-@all", "+@read", "-keys"],
        &["bob", "reset", "+client", "-client|kill"],
        &["bob", "reset", "+select|0"],
        &["bob", "nopass", "allkeys", "allchannels", "on"],
        &[
            "bob",
            "resetpass",
            "#30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4",
        ],
        &[
            "bob",
            "skip-sanitize-payload",
            "resetkeys",
            "~a",
            "%R~a",
            "%RW~b",
        ],
        &["carol", "on", "nopass", "+@all", "~*", "&*"],
    ] {
        let mut cmd = vec!["ACL", "SETUSER"];
        cmd.extend_from_slice(rules);
        pair.same_str(&cmd);
        pair.same_str(&["ACL", "GETUSER", rules[0]]);
        pair.same_str(&["ACL", "LIST"]);
    }
    pair.same_str(&["ACL", "USERS"]);
    pair.same_str(&["ACL", "CAT"]);
    pair.same_str(&["ACL", "GETUSER", "nosuch"]);
    // Errors, and a failing SETUSER changes nothing.
    for bad in [
        &["x", "+nosuch"][..],
        &["x", "+@nosuch"],
        &["x", "badrule"],
        &["x", "%X~x"],
        &["x", "+get|"],
        &["x", "+config|get|x"],
        &["x", "#abc"],
        &["x", "<nopw"],
        &["x", "!abc"],
        &["carol", "~x"],
        &["carol", "&x"],
        &["a b"],
        &["bob", "on", "+nosuch"],
    ] {
        let mut cmd = vec!["ACL", "SETUSER"];
        cmd.extend_from_slice(bad);
        pair.same_str(&cmd);
    }
    pair.same_str(&["ACL", "GETUSER", "bob"]);
    pair.same_str(&["ACL", "DELUSER", "default"]);
    pair.same_str(&["ACL", "DELUSER", "carol", "nosuch", "x"]);
    pair.same_str(&["ACL", "USERS"]);
    pair.same_str(&["ACL", "CAT", "nosuch"]);
    pair.same_str(&["ACL", "GENPASS", "0"]);
    pair.same_str(&["ACL", "GENPASS", "5000"]);
    pair.same_str(&["ACL", "NOSUB"]);
    pair.same_str(&["ACL", "HELP"]);
    pair.same_str(&["ACL", "LOAD"]);
    pair.same_str(&["ACL", "SAVE"]);
    pair.same_str(&["ACL", "WHOAMI"]);
}

#[test]
fn a_restricted_user_is_refused_as_redis_refuses() {
    let mut pair = Pair::start();
    pair.same_str(&[
        "ACL",
        "SETUSER",
        "bob",
        "on",
        ">pw",
        "~k*",
        "%R~r*",
        "%W~w*",
        "&ch*",
        "+@all",
        "-flushall",
    ]);
    pair.same_str(&["SET", "r1", "x"]);
    let bob = login(&mut pair, "bob", "pw");
    pair.same_str_on(bob, &["ACL", "WHOAMI"]);
    for cmd in [
        &["FLUSHALL"][..],
        &["GET", "zz"],
        &["GET", "r1"],
        &["SET", "r1", "1"],
        &["SET", "w1", "1"],
        &["GET", "w1"],
        &["SET", "w1", "1", "GET"],
        &["SET", "k1", "1", "GET"],
        &["MSET", "k1", "1", "zz", "2"],
        &["MGET", "k1", "r1", "w1"],
        &["COPY", "r1", "w2"],
        &["COPY", "w1", "r2"],
        &["PUBLISH", "x", "y"],
        &["PUBLISH", "ch1", "y"],
        &["EVAL", "return redis.pcall('get','zz')", "0"],
        &["EVAL", "return redis.pcall('flushall')", "0"],
        &["EVAL", "return redis.pcall('publish','x','y')", "0"],
        &["EVAL", "return redis.pcall('get','k1')", "0"],
    ] {
        pair.same_str_on(bob, cmd);
    }
    // Queue time: the refused command discards the transaction.
    for cmd in [&["MULTI"][..], &["GET", "zz"], &["GET", "k1"], &["EXEC"]] {
        pair.same_str_on(bob, cmd);
    }
    // EXEC time: the rules changed after the commands queued.
    for cmd in [&["MULTI"][..], &["GET", "k1"], &["SET", "k2", "v"]] {
        pair.same_str_on(bob, cmd);
    }
    pair.same_str(&["ACL", "SETUSER", "bob", "-set"]);
    pair.same_str_on(bob, &["EXEC"]);
    pair.same_str_on(bob, &["SUBSCRIBE", "x"]);
    pair.same_str_on(bob, &["PSUBSCRIBE", "ch*", "ch1*"]);
    for dry in [
        &["bob", "get", "k"][..],
        &["bob", "flushall"],
        &["bob", "get", "zz"],
        &["bob", "publish", "x", "y"],
        &["nouser", "get", "k"],
        &["bob", "nocmd"],
        &["bob", "get"],
        &["bob", "config", "nosuch"],
    ] {
        let mut cmd = vec!["ACL", "DRYRUN"];
        cmd.extend_from_slice(dry);
        pair.same_str(&cmd);
    }
    pair.same_str(&["AUTH", "bob", "wrong"]);
    pair.same_str(&["AUTH", "nobody", "x"]);
    pair.same_str(&["AUTH", "x"]);
    let fields = |pair: &mut Pair| {
        let port = |p: u16| format!("redis://127.0.0.1:{p}/");
        let mut out = Vec::new();
        for url in [port(pair.redis.port), pair.citadel.url()] {
            let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
            let log: Vec<Vec<redis::Value>> = redis::cmd("ACL")
                .arg("LOG")
                .arg(20)
                .query(&mut con)
                .unwrap();
            // count, reason, context, object, username (age and client
            // info are each server's).
            let head: Vec<Vec<redis::Value>> = log.into_iter().map(|e| e[..10].to_vec()).collect();
            out.push(head);
        }
        out
    };
    let both = fields(&mut pair);
    assert_eq!(both[1], both[0], "ACL LOG");
    pair.same_str(&["ACL", "LOG", "RESET"]);
    pair.same_str(&["ACL", "LOG"]);
    // A subscriber whose channel is taken away, and every connection of
    // a deleted user, are closed (on both servers).
    let urls = [
        format!("127.0.0.1:{}", pair.redis.port),
        format!("127.0.0.1:{}", pair.citadel.port),
    ];
    let open = |cmds: &[u8]| {
        urls.iter()
            .map(|a| {
                let mut s = std::net::TcpStream::connect(a).unwrap();
                s.write_all(cmds).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                let _ = s.read(&mut [0u8; 256]);
                s
            })
            .collect::<Vec<_>>()
    };
    let closed = |mut s: std::net::TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    };
    pair.same_str(&[
        "ACL",
        "SETUSER",
        "bob",
        "+set",
        "resetchannels",
        "&ch1",
        "&ch2",
    ]);
    let subscriber = open(b"AUTH bob pw\r\nSUBSCRIBE ch1\r\n");
    let plain = open(b"AUTH bob pw\r\nPING\r\n");
    pair.same_str(&["ACL", "SETUSER", "bob", "resetchannels", "&ch2"]);
    for s in subscriber {
        assert!(
            closed(s),
            "a subscriber to a channel taken away stays connected"
        );
    }
    pair.same_str(&["ACL", "DELUSER", "bob"]);
    for s in plain {
        assert!(closed(s), "a deleted user's connection stays open");
    }
}

/// ACL SAVE writes the users as ACL LIST prints them; ACL LOAD reads the
/// file back (and a file loads at start).
#[test]
fn acl_file_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.acl");
    std::fs::write(
        &path,
        "user default on nopass ~* &* +@all\n\n# comment\nuser app on >apppw ~app:* resetchannels -@all +get +set\n",
    )
    .unwrap();
    let server = Server::start(&["--aclfile", path.to_str().unwrap()]);
    let mut con = server.client();
    let users: Vec<String> = redis::cmd("ACL").arg("USERS").query(&mut con).unwrap();
    assert_eq!(users, ["app", "default"]);
    let app = format!("redis://app:apppw@127.0.0.1:{}/", server.port);
    let mut app_con = redis::Client::open(app.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("app:1")
        .arg("v")
        .query(&mut app_con)
        .unwrap();
    let refused: redis::RedisResult<()> = redis::cmd("DEL").arg("app:1").query(&mut app_con);
    assert!(refused.unwrap_err().to_string().contains("'del' command"));
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("ops")
        .arg("on")
        .arg(">opspw")
        .arg("+@all")
        .arg("-@dangerous")
        .arg("%R~*")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("ACL").arg("SAVE").query(&mut con).unwrap();
    let list: Vec<String> = redis::cmd("ACL").arg("LIST").query(&mut con).unwrap();
    let saved = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        saved,
        list.iter().map(|l| format!("{l}\n")).collect::<String>()
    );
    // Edited on disk, loaded again: app's connections are closed.
    std::fs::write(&path, saved.replace("+get +set", "+get")).unwrap();
    let _: () = redis::cmd("ACL").arg("LOAD").query(&mut con).unwrap();
    let after: Vec<String> = redis::cmd("ACL").arg("LIST").query(&mut con).unwrap();
    assert!(after
        .iter()
        .any(|l| l.starts_with("user app ") && l.ends_with("-@all +get")));
    std::thread::sleep(Duration::from_millis(200));
    let closed: redis::RedisResult<String> = redis::cmd("PING").query(&mut app_con);
    assert!(closed.is_err(), "app's connection survived ACL LOAD");
    // A bad file is refused whole, and the users stay.
    std::fs::write(&path, "user app on +nosuch\nuser x on\n").unwrap();
    let bad: redis::RedisResult<()> = redis::cmd("ACL").arg("LOAD").query(&mut con);
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("Unknown command or category"));
    let users: Vec<String> = redis::cmd("ACL").arg("USERS").query(&mut con).unwrap();
    assert_eq!(users, ["app", "default", "ops"]);
}

/// Rules changed on one connection apply to the user's connections on
/// every core at their next command; DELUSER closes them.
#[test]
fn a_user_changed_while_connected_on_other_cores() {
    let server = Server::start(&["--threads", "2"]);
    let mut admin = server.client();
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "u",
            "on",
            ">pw",
            "~*",
            "+get",
            "+set",
            "+client|id",
        ])
        .query(&mut admin)
        .unwrap();
    let url = format!("redis://u:pw@127.0.0.1:{}/", server.port);
    let mut conns: Vec<redis::Connection> = (0..4)
        .map(|_| {
            redis::Client::open(url.as_str())
                .unwrap()
                .get_connection()
                .unwrap()
        })
        .collect();
    for c in &mut conns {
        let _: () = redis::cmd("SET").arg("k").arg("v").query(c).unwrap();
    }
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "u", "-set"])
        .query(&mut admin)
        .unwrap();
    for c in &mut conns {
        let err: redis::RedisResult<()> = redis::cmd("SET").arg("k").arg("v").query(c);
        assert!(err.unwrap_err().to_string().contains("'set' command"));
        let v: String = redis::cmd("GET").arg("k").query(c).unwrap();
        assert_eq!(v, "v");
    }
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
    assert_eq!(list.matches(" user=u ").count(), 4, "{list}");
    let deleted: i64 = redis::cmd("ACL")
        .arg(&["DELUSER", "u"])
        .query(&mut admin)
        .unwrap();
    assert_eq!(deleted, 1);
    std::thread::sleep(Duration::from_millis(300));
    for c in &mut conns {
        let gone: redis::RedisResult<String> = redis::cmd("GET").arg("k").query(c);
        assert!(
            gone.is_err(),
            "a deleted user's connection still runs commands"
        );
    }
}
