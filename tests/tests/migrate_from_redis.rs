//! A real redis-server's MIGRATE into Citadel: Redis sends AUTH, SELECT
//! and RESTORE (its DUMP payloads) over its own connection, so keys of
//! every type (streams with their groups too) move into Citadel with
//! their TTLs, COPY and REPLACE behave as between two Redis servers, and
//! Citadel's refusals come back as Redis's MIGRATE errors.

use citadel_tests::reference::RedisServer;
use citadel_tests::{redis, Server};
use redis::{Connection, Value};

fn run(con: &mut Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(args[0]);
    args[1..].iter().for_each(|a| {
        cmd.arg(*a);
    });
    cmd.query(con)
}

/// A key's value read with its type's commands, in an order that does not
/// depend on either server's layout.
fn read(con: &mut Connection, key: &str) -> Vec<String> {
    let kind = format!("{:?}", run(con, &["TYPE", key]).unwrap());
    let mut out = match kind.as_str() {
        k if k.contains("string") => vec![format!("{:?}", run(con, &["GET", key]))],
        k if k.contains("list") => vec![format!("{:?}", run(con, &["LRANGE", key, "0", "-1"]))],
        k if k.contains("zset") => {
            vec![format!(
                "{:?}",
                run(con, &["ZRANGE", key, "0", "-1", "WITHSCORES"])
            )]
        }
        k if k.contains("stream") => vec![
            format!("{:?}", run(con, &["XRANGE", key, "-", "+"])),
            format!("{:?}", run(con, &["XINFO", "GROUPS", key])),
        ],
        k if k.contains("hash") || k.contains("set") => {
            let all = if k.contains("hash") {
                "HGETALL"
            } else {
                "SMEMBERS"
            };
            let Ok(Value::Array(items)) = run(con, &[all, key]) else {
                panic!("{all} {key}");
            };
            let mut items: Vec<String> = items.iter().map(|v| format!("{v:?}")).collect();
            if all == "HGETALL" {
                let mut pairs: Vec<String> = items.chunks(2).map(|p| p.join("=")).collect();
                pairs.sort();
                pairs
            } else {
                items.sort();
                items
            }
        }
        other => panic!("{key}: {other}"),
    };
    out.insert(0, kind);
    out
}

const KEYS: [&str; 8] = [
    "str", "ttl", "hash", "list", "bigset", "zset", "stream", "ints",
];

fn fill(redis: &mut Connection) {
    let script = [
        vec!["SET", "str", "hello"],
        vec!["SET", "ttl", "soon", "PX", "600000"],
        vec!["HSET", "hash", "f1", "v1", "f2", "22"],
        vec!["SADD", "ints", "1", "2", "3", "-70000"],
        vec!["ZADD", "zset", "1.5", "a", "-2", "b", "inf", "c"],
        vec!["XADD", "stream", "1-1", "f", "v"],
        vec!["XADD", "stream", "2-1", "f", "w", "g", "x"],
        vec!["XGROUP", "CREATE", "stream", "workers", "0"],
        vec![
            "XREADGROUP",
            "GROUP",
            "workers",
            "ann",
            "COUNT",
            "1",
            "STREAMS",
            "stream",
            ">",
        ],
    ];
    for args in script {
        run(redis, &args).unwrap();
    }
    for i in 0..1000 {
        let (n, m) = (i.to_string(), format!("member-{i}"));
        run(redis, &["RPUSH", "list", &n]).unwrap();
        run(redis, &["SADD", "bigset", &m]).unwrap();
    }
}

#[test]
fn redis_migrate_moves_every_type_into_citadel() {
    let redis_server = RedisServer::start();
    let citadel = Server::start(&["--requirepass", "pw"]);
    let mut redis = redis_server_client(&redis_server);
    let url = format!("redis://:pw@127.0.0.1:{}/", citadel.port);
    let mut cit = redis::Client::open(url).unwrap().get_connection().unwrap();
    fill(&mut redis);
    let want: Vec<Vec<String>> = KEYS.iter().map(|k| read(&mut redis, k)).collect();
    let port = citadel.port.to_string();

    // COPY: the keys stay in Redis and arrive in Citadel the same.
    let mut copy = vec![
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "5000",
        "COPY",
        "AUTH",
        "pw",
        "KEYS",
    ];
    copy.extend(KEYS);
    assert_eq!(run(&mut redis, &copy).unwrap(), Value::Okay);
    for (key, want) in KEYS.iter().zip(&want) {
        assert_eq!(&read(&mut cit, key), want, "{key}");
        assert_eq!(&read(&mut redis, key), want, "{key} kept in Redis");
    }
    let Ok(Value::Int(pttl)) = run(&mut cit, &["PTTL", "ttl"]) else {
        panic!("PTTL");
    };
    assert!((500_000..=600_000).contains(&pttl), "{pttl}");

    // Again without REPLACE: Citadel's BUSYKEY comes back as Redis's error.
    copy.retain(|a| *a != "COPY");
    let busy = run(&mut redis, &copy).unwrap_err().to_string();
    assert!(
        busy.contains("Target instance replied with error: BUSYKEY"),
        "{busy}"
    );
    // With REPLACE and without COPY: moved, gone from Redis.
    run(&mut redis, &["HSET", "hash", "f3", "new"]).unwrap();
    let hash_now = read(&mut redis, "hash");
    copy.insert(6, "REPLACE");
    assert_eq!(run(&mut redis, &copy).unwrap(), Value::Okay);
    assert_eq!(run(&mut redis, &["DBSIZE"]).unwrap(), Value::Int(0));
    assert_eq!(read(&mut cit, "hash"), hash_now);

    // One key into database 3 (Redis sends SELECT 3), with AUTH2.
    run(&mut redis, &["SET", "elsewhere", "v3"]).unwrap();
    let one = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "elsewhere",
        "3",
        "5000",
        "AUTH2",
        "default",
        "pw",
    ];
    assert_eq!(run(&mut redis, &one).unwrap(), Value::Okay);
    run(&mut cit, &["SELECT", "3"]).unwrap();
    assert_eq!(
        run(&mut cit, &["GET", "elsewhere"]).unwrap(),
        Value::BulkString(b"v3".to_vec())
    );

    // A wrong password: Citadel's refusal, as Redis reports it; the key stays.
    run(&mut redis, &["SET", "stays", "v"]).unwrap();
    let wrong = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "stays",
        "0",
        "5000",
        "AUTH",
        "nope",
    ];
    let err = run(&mut redis, &wrong).unwrap_err().to_string();
    assert!(
        err.contains("Target instance replied with error: WRONGPASS"),
        "{err}"
    );
    assert_eq!(
        run(&mut redis, &["EXISTS", "stays"]).unwrap(),
        Value::Int(1)
    );
}

fn redis_server_client(server: &RedisServer) -> Connection {
    redis::Client::open(format!("redis://127.0.0.1:{}/", server.port))
        .unwrap()
        .get_connection()
        .unwrap()
}
