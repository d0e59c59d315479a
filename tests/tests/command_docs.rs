//! COMMAND DOCS `arguments` lists, compared with a real redis-server's
//! (RESP2 and RESP3). Skipped when redis-server is absent (tests/run.sh
//! installs it).

use citadel_tests::redis::{self, Value};
use citadel_tests::reference::RedisServer;
use citadel_tests::Server;

/// The `arguments` field of the one entry of `COMMAND DOCS <name...>`.
fn doc_arguments(port: u16, resp3: bool, name: &[&str]) -> Value {
    let proto = if resp3 { "?protocol=resp3" } else { "" };
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/{proto}")).unwrap();
    let mut con = client.get_connection().unwrap();
    let reply: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg(name.join("|"))
        .query(&mut con)
        .unwrap();
    // RESP2: [name, [field, value, ...]]; RESP3: {name: {field: value}}.
    let fields: Vec<(Value, Value)> = match reply {
        Value::Array(top) => match &top[..] {
            [_, Value::Array(flat)] => flat
                .chunks(2)
                .map(|kv| (kv[0].clone(), kv[1].clone()))
                .collect(),
            other => panic!("unexpected RESP2 reply {other:?}"),
        },
        Value::Map(top) => match &top[..] {
            [(_, Value::Map(m))] => m.clone(),
            other => panic!("unexpected RESP3 reply {other:?}"),
        },
        other => panic!("unexpected reply {other:?}"),
    };
    fields
        .into_iter()
        .find(|(k, _)| *k == Value::BulkString(b"arguments".to_vec()))
        .unwrap_or_else(|| panic!("no arguments for {name:?}"))
        .1
}

#[test]
fn command_docs_arguments_match_redis() {
    let redis_server = RedisServer::start();
    let citadel = Server::start(&[]);
    for resp3 in [false, true] {
        for name in [
            &["get"][..],
            &["set"],
            &["expire"],
            &["scan"],
            &["client", "kill"],
            &["bitfield"],
            &["bitcount"],
            &["pfmerge"],
            &["spublish"],
            &["pubsub", "numsub"],
            &["slowlog", "get"],
            &["latency", "reset"],
            &["object", "encoding"],
            &["memory", "usage"],
            &["client", "pause"],
            &["client", "reply"],
            &["wait"],
        ] {
            let want = doc_arguments(redis_server.port, resp3, name);
            let got = doc_arguments(citadel.port, resp3, name);
            assert_eq!(got, want, "{name:?} resp3={resp3}");
        }
    }
}
