//! Basic string, key and expiry commands through the `redis` crate.

use std::time::Duration;

use citadel_tests::redis::{self, Commands};
use citadel_tests::Server;

#[test]
fn strings_and_keys() {
    let server = Server::start(&[]);
    let mut c = server.client();
    assert_eq!(redis::cmd("PING").query::<String>(&mut c).unwrap(), "PONG");
    let _: () = c.set("greeting", "hello").unwrap();
    assert_eq!(c.get::<_, String>("greeting").unwrap(), "hello");
    assert_eq!(c.append::<_, _, i64>("greeting", " world").unwrap(), 11);
    assert_eq!(c.strlen::<_, i64>("greeting").unwrap(), 11);
    assert_eq!(c.incr::<_, _, i64>("n", 5).unwrap(), 5);
    assert_eq!(c.incr::<_, _, i64>("n", -2).unwrap(), 3);
    assert!(redis::cmd("INCR")
        .arg("greeting")
        .query::<i64>(&mut c)
        .is_err());
    let _: () = c.mset(&[("a", "1"), ("b", "2")]).unwrap();
    let got: Vec<Option<String>> = c.mget(&["a", "missing", "b"]).unwrap();
    assert_eq!(got, vec![Some("1".into()), None, Some("2".into())]);
    assert_eq!(c.exists::<_, i64>(&["a", "b", "missing"]).unwrap(), 2);
    assert_eq!(c.del::<_, i64>(&["a", "missing"]).unwrap(), 1);
    assert_eq!(c.get::<_, Option<String>>("a").unwrap(), None);
    let set_nx: Option<String> = redis::cmd("SET")
        .arg("b")
        .arg("x")
        .arg("NX")
        .query(&mut c)
        .unwrap();
    assert_eq!(set_nx, None);
    let _: () = redis::cmd("RENAME")
        .arg("b")
        .arg("c")
        .query(&mut c)
        .unwrap();
    assert_eq!(c.get::<_, String>("c").unwrap(), "2");
    assert_eq!(
        redis::cmd("TYPE").arg("c").query::<String>(&mut c).unwrap(),
        "string"
    );
    let mut keys: Vec<String> = c.keys("*").unwrap();
    keys.sort();
    assert_eq!(keys, vec!["c", "greeting", "n"]);
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 3);
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 0);
}

#[test]
fn expiry() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let _: () = c.set_ex("ex", "v", 100).unwrap();
    let ttl: i64 = c.ttl("ex").unwrap();
    assert!((99..=100).contains(&ttl), "ttl {ttl}");
    let _: () = c.set("plain", "v").unwrap();
    assert_eq!(c.ttl::<_, i64>("plain").unwrap(), -1);
    assert_eq!(c.ttl::<_, i64>("missing").unwrap(), -2);
    assert!(c.expire::<_, bool>("plain", 50).unwrap());
    assert!(c.persist::<_, bool>("plain").unwrap());
    assert_eq!(c.ttl::<_, i64>("plain").unwrap(), -1);
    let _: () = redis::cmd("SET")
        .arg("short")
        .arg("v")
        .arg("PX")
        .arg(150)
        .query(&mut c)
        .unwrap();
    let pttl: i64 = c.pttl("short").unwrap();
    assert!(pttl > 0 && pttl <= 150, "pttl {pttl}");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(c.get::<_, Option<String>>("short").unwrap(), None);
    assert_eq!(c.exists::<_, i64>("short").unwrap(), 0);
    assert_eq!(c.get::<_, String>("ex").unwrap(), "v");
}

#[test]
fn auth_with_requirepass() {
    let server = Server::start(&["--requirepass", "s3cret"]);
    let mut c = server.client();
    let err = redis::cmd("GET")
        .arg("k")
        .query::<Option<String>>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("NOAUTH"), "{err}");
    assert!(redis::cmd("AUTH")
        .arg("wrong")
        .query::<String>(&mut c)
        .is_err());
    assert_eq!(
        redis::cmd("AUTH")
            .arg("s3cret")
            .query::<String>(&mut c)
            .unwrap(),
        "OK"
    );
    let _: () = c.set("k", "v").unwrap();
    let authed =
        redis::Client::open(format!("redis://:s3cret@127.0.0.1:{}/", server.port)).unwrap();
    let mut c2 = authed.get_connection().unwrap();
    assert_eq!(c2.get::<_, String>("k").unwrap(), "v");
}
