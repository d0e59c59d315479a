//! LATENCY HISTOGRAM against a real redis-server: the commands it reports
//! for the names it is asked (a container brings its subcommands), in the
//! order asked. The buckets are timings, so only the names are compared.

use citadel_tests::differential::Clients;
use citadel_tests::redis::{self, Value};

/// The command names LATENCY HISTOGRAM `asked` reports, in reply order.
fn reported(con: &mut redis::Connection, asked: &[&str]) -> Vec<String> {
    let reply: Value = redis::cmd("LATENCY")
        .arg("HISTOGRAM")
        .arg(asked)
        .query(con)
        .unwrap();
    let items = match reply {
        Value::Array(items) => items,
        other => panic!("LATENCY HISTOGRAM {asked:?}: {other:?}"),
    };
    items
        .iter()
        .step_by(2)
        .map(|name| redis::from_redis_value(name).unwrap())
        .collect()
}

#[test]
fn histogram_reports_subcommands_of_a_container_asked() {
    let mut c = Clients::start();
    for con in [&mut c.redis, &mut c.citadel] {
        let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(con).unwrap();
        let _: i64 = redis::cmd("CLIENT").arg("ID").query(con).unwrap();
        let _: String = redis::cmd("CLIENT").arg("LIST").query(con).unwrap();
        let _: () = redis::cmd("SET").arg("k").arg("v").query(con).unwrap();
    }
    for asked in [
        &["client"][..],
        &["client|id"],
        &["CLIENT|LIST", "set"],
        &["set", "client|id", "nosuch", "get"],
        &["config"],
    ] {
        let mut want = reported(&mut c.redis, asked);
        let mut got = reported(&mut c.citadel, asked);
        // Redis lists a container's subcommands in its dictionary's order.
        if asked == ["client"] {
            want.sort();
            got.sort();
        }
        assert_eq!(got, want, "LATENCY HISTOGRAM {asked:?}");
    }
}
