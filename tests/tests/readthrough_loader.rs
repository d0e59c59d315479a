//! Read-through end to end without a database: the real `citadel` binary
//! with the fake loader plugin (`plugins/examples/fake-loader`). The loader
//! answers `v:<key>:<generation>`, says keys under `user:no`/`short:no` do
//! not exist, fails or delays keys by prefix, takes commands (`invalidate
//! KEY`, `resync`, `down`, `up`) from a control file, and logs every key it
//! answers, so each test counts the loads the server asked for.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use citadel_tests::clients::{
    concurrent_gets, getex_ex, info_field, kill_plugin_during, plugin_info, raw_get,
    readthrough_info, wait_loaded, wait_until,
};
use citadel_tests::redis;
use citadel_tests::{fake_loader_bin, Server};

struct Rig {
    server: Server,
    control: PathBuf,
    served: PathBuf,
    _dir: tempfile::TempDir,
}

/// Citadel with the fake loader `fake` (plus `loader_args`, and
/// `plugin_extra` in its `[[plugin]]` table) and these keyspaces:
/// `user:` (60 s TTL, 60 s negative TTL), `short:` (300 ms negative TTL),
/// `stale:` (200 ms TTL, 60 s stale window), `brief:` (200 ms TTL, 300 ms
/// stale window); the breaker opens after `breaker_failures` for 300 ms.
fn start(loader_args: &[&str], plugin_extra: &str, breaker_failures: u32) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    let served = dir.path().join("served");
    let mut args = vec![
        "--value",
        "v:{key}:{gen}",
        "--absent-prefix",
        "user:no",
        "--absent-prefix",
        "short:no",
        "--control-poll-ms",
        "5",
    ];
    args.extend_from_slice(loader_args);
    let mut args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    args.push(format!(
        "\"--control\", {:?}",
        control.display().to_string()
    ));
    args.push(format!(
        "\"--served-log\", {:?}",
        served.display().to_string()
    ));
    let keyspace = |prefix: &str, settings: &str| {
        format!(
            "[[keyspace]]\nprefix = \"{prefix}\"\nloader = \"fake\"\n{settings}\n\
             breaker-failures = {breaker_failures}\nbreaker-open-ms = 300\n\n"
        )
    };
    let keyspaces = [
        keyspace("user:", "ttl-ms = 60000\nnegative-ttl-ms = 60000"),
        keyspace("short:", "negative-ttl-ms = 300"),
        keyspace(
            "stale:",
            "ttl-ms = 200\nttl-jitter-ms = 0\nstale-ms = 60000",
        ),
        keyspace("brief:", "ttl-ms = 200\nttl-jitter-ms = 0\nstale-ms = 300"),
    ];
    let config = format!(
        r#"
[[plugin]]
name = "fake"
exec = "{exec}"
args = [{args}]
cores = "none"
max-inflight = 4096
restart-backoff-ms = 10
restart-backoff-max-ms = 50
{plugin_extra}

{keyspaces}"#,
        exec = fake_loader_bin().display(),
        args = args.join(", "),
        keyspaces = keyspaces.concat(),
    );
    let path = dir.path().join("citadel.toml");
    std::fs::write(&path, config).unwrap();
    let server = Server::start(&["--config", path.to_str().unwrap()]);
    let rig = Rig {
        server,
        control,
        served,
        _dir: dir,
    };
    wait_loaded(&rig.server, "user:ready");
    rig
}

impl Rig {
    /// How many times the loader answered a load of `key`.
    fn loads(&self, key: &str) -> usize {
        std::fs::read_to_string(&self.served)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == key)
            .count()
    }

    /// Appends a command to the loader's control file.
    fn control(&self, command: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.control)
            .unwrap();
        f.write_all(format!("{command}\n").as_bytes()).unwrap();
    }

    fn get(&self, key: &str) -> String {
        raw_get(&self.server, key)
    }
}

#[test]
fn a_load_then_hits_absent_keys_are_negative_cached_mget_and_getex() {
    let rig = start(&[], "", 3);
    let mut con = rig.server.client();
    assert_eq!(rig.get("user:1"), "v:user:1:0");
    for _ in 0..10 {
        assert_eq!(rig.get("user:1"), "v:user:1:0");
    }
    assert_eq!(rig.loads("user:1"), 1, "hits never reach the loader");
    let ttl: i64 = redis::cmd("PTTL").arg("user:1").query(&mut con).unwrap();
    assert!(
        (54_000..=66_000).contains(&ttl),
        "TTL 60 s plus jitter: {ttl}"
    );

    // Absent: nil, remembered (not a key), asked again after negative-ttl-ms.
    for _ in 0..20 {
        assert_eq!(rig.get("user:no1"), "(nil)");
    }
    assert_eq!(rig.loads("user:no1"), 1);
    let exists: i64 = redis::cmd("EXISTS")
        .arg("user:no1")
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, 0, "a negative marker is not a key");
    assert_eq!(
        info_field(&readthrough_info(&rig.server), "negative_hits"),
        19
    );
    assert_eq!(rig.get("short:no1"), "(nil)");
    assert_eq!(rig.get("short:no1"), "(nil)");
    assert_eq!(rig.loads("short:no1"), 1);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(rig.get("short:no1"), "(nil)");
    assert_eq!(rig.loads("short:no1"), 2, "asked again after 300 ms");

    // MGET: a hit, a load, an absent load, a plain miss, a negative hit.
    let got: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&["user:1", "user:2", "user:no2", "other:1", "user:no1"])
        .query(&mut con)
        .unwrap();
    let want = [Some("v:user:1:0"), Some("v:user:2:0"), None, None, None];
    assert_eq!(got, want.map(|v| v.map(String::from)).to_vec());
    let loads: Vec<usize> = ["user:1", "user:2", "user:no2", "other:1", "user:no1"]
        .iter()
        .map(|k| rig.loads(k))
        .collect();
    assert_eq!(loads, [1, 1, 1, 0, 1]);

    // GETEX with options loads, then applies them.
    let (v, ttl) = getex_ex(&mut con, "user:3", 1000);
    assert_eq!(v.as_deref(), Some("v:user:3:0"));
    assert!((990..=1000).contains(&ttl), "{ttl}");
    assert_eq!(rig.loads("user:3"), 1);
}

#[test]
fn one_thousand_concurrent_gets_of_a_cold_key_make_one_load() {
    // The answer takes 500 ms, so all 1,000 GETs arrive while it is pending.
    let rig = start(&["--delay-ms", "500"], "", 3);
    let replies = concurrent_gets(&rig.server, |_| "user:hot".into(), 1000);
    assert!(
        replies.iter().all(|r| r == "v:user:hot:0"),
        "{:?}",
        &replies[..3]
    );
    assert_eq!(rig.loads("user:hot"), 1, "exactly one load for 1,000 GETs");
    let info = readthrough_info(&rig.server);
    assert_eq!(info_field(&info, "load_joins"), 999, "{info}");
}

#[test]
fn loader_errors_and_timeouts_reach_clients_then_the_breaker_opens_and_recovers() {
    let rig = start(
        &[
            "--unavailable-prefix",
            "user:down",
            "--timeout-prefix",
            "user:late",
            "--slow-prefix",
            "user:slow",
            "--slow-ms",
            "5000",
        ],
        "timeout-ms = 300",
        3,
    );
    assert_eq!(
        rig.get("user:down1"),
        "-ERR origin unavailable: fake origin refused user:down1"
    );
    assert_eq!(
        rig.get("user:late1"),
        "-ERR origin timeout: fake origin did not answer for user:late1"
    );
    // The loader holds this one for 5 s: the server gives up at 300 ms.
    let t = Instant::now();
    assert_eq!(
        rig.get("user:slow1"),
        "-ERR origin timeout: loader 'fake' did not answer within 300 ms"
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // Three failures in a row: the breaker is open and misses fail fast,
    // without asking the loader, shed by the downstream layer.
    let info = readthrough_info(&rig.server);
    assert!(info.contains("loader_fake:breaker=open,"), "{info}");
    assert_eq!(
        rig.get("user:1"),
        "-OVERLOAD downstream origin unavailable: circuit breaker open for loader 'fake' after \
         3 consecutive failures (last: origin timeout: loader 'fake' did not answer within 300 ms)"
    );
    assert_eq!(rig.loads("user:1"), 0);
    // After breaker-open-ms one trial load goes through, and closes it.
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(rig.get("user:1"), "v:user:1:0");
    let info = readthrough_info(&rig.server);
    assert!(info.contains("loader_fake:breaker=closed,"), "{info}");
    assert!(info.contains(",trips=1"), "{info}");
    assert_eq!(rig.get("user:2"), "v:user:2:0");
}

#[test]
fn stale_values_are_served_on_origin_errors_within_the_stale_window() {
    // A high breaker threshold: this test is about the stale window.
    let rig = start(&[], "", 1000);
    let loaded = Instant::now();
    assert_eq!(rig.get("stale:1"), "v:stale:1:0");
    assert_eq!(rig.get("brief:1"), "v:brief:1:0");
    rig.control("down");
    let mut probe = 0;
    wait_until("the origin to go down", Duration::from_secs(5), || {
        probe += 1;
        rig.get(&format!("user:probe{probe}"))
            .contains("fake origin is down")
    });
    // Past the 200 ms TTL: the reload fails, the stale value is served.
    std::thread::sleep(Duration::from_millis(250).saturating_sub(loaded.elapsed()));
    assert_eq!(rig.get("stale:1"), "v:stale:1:0");
    assert_eq!(rig.get("brief:1"), "v:brief:1:0");
    assert_eq!(
        info_field(&readthrough_info(&rig.server), "stale_served"),
        2
    );
    // Past brief:'s 300 ms stale window the error comes through.
    std::thread::sleep(Duration::from_millis(700).saturating_sub(loaded.elapsed()));
    assert_eq!(
        rig.get("brief:1"),
        "-ERR origin unavailable: fake origin is down (loading brief:1)"
    );
    assert_eq!(rig.get("stale:1"), "v:stale:1:0");
    rig.control("up");
    wait_until("the origin to come back", Duration::from_secs(5), || {
        rig.get("brief:1") == "v:brief:1:0"
    });
    let reloads = rig.loads("stale:1");
    assert_eq!(rig.get("stale:1"), "v:stale:1:0");
    assert_eq!(
        rig.loads("stale:1"),
        reloads + 1,
        "past its TTL: loaded again"
    );
}

#[test]
fn an_invalidation_pushed_by_the_loader_makes_the_next_get_load_the_new_value() {
    let rig = start(&[], "", 3);
    assert_eq!(rig.get("user:7"), "v:user:7:0");
    assert_eq!(rig.get("user:7"), "v:user:7:0");
    rig.control("invalidate user:7");
    wait_until("the invalidation", Duration::from_secs(5), || {
        rig.get("user:7") == "v:user:7:1"
    });
    assert_eq!(rig.loads("user:7"), 2);
    assert_eq!(
        info_field(&readthrough_info(&rig.server), "invalidations"),
        1
    );
    rig.control("resync");
    wait_until("the resync", Duration::from_secs(5), || {
        info_field(&readthrough_info(&rig.server), "resyncs") == 1
    });
}

#[test]
fn a_key_that_crashes_the_loader_is_abandoned_after_max_attempts() {
    let rig = start(&["--crash-key", "user:boom"], "max-attempts = 3", 3);
    assert_eq!(
        rig.get("user:boom"),
        "-ERR origin unavailable: loader 'fake' abandoned the request after 3 attempts: it \
         crashed the plugin each time (poison request)"
    );
    assert_eq!(plugin_info(&rig.server, "fake", "restarts"), "3");
    assert_eq!(rig.get("user:2"), "v:user:2:0");
}

#[test]
fn kill_9_of_the_loader_with_1000_loads_in_flight_answers_every_client() {
    // Each answer takes 300 ms, so the loader dies holding the loads.
    let rig = start(&["--delay-ms", "300"], "timeout-ms = 20000", 3);
    let replies = kill_plugin_during(&rig.server, "fake", Duration::from_millis(150), || {
        concurrent_gets(&rig.server, |i| format!("user:k{i}"), 1000)
    });
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r, &format!("v:user:k{i}:0"), "client {i}");
    }
    assert_eq!(plugin_info(&rig.server, "fake", "restarts"), "1");
    assert!((0..1000).all(|i| rig.loads(&format!("user:k{i}")) >= 1));
}
