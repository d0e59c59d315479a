//! Gray release end to end: the real `citadel` binary running two versions
//! of the real echo plugin (`plugins/examples/echo`; a version is made
//! "broken" with `ECHO_FAIL=1`, and `WHO` answers `<version>/<instance>`).
//! Weights are honoured, keys stick to a version, PLUGIN WEIGHT / PROMOTE /
//! ROLLBACK and kill -9 of an instance under load lose no call, and the
//! automatic rollback takes a broken version out of traffic; a reload
//! replaces each version's instances beside the old ones (overlapped,
//! through its spare slot) with no failed call, for both placements. Weight
//! changes and the automatic rollback run for both placements: the echo
//! crate's inline module (`placement = "inline"`) drains a version at
//! weight 0 and stops its threads, and is judged by the rollback rule,
//! like the processes.

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_tests::redis::{self, Connection};
use citadel_tests::{echo_plugin_bin, Server};

struct Rig {
    server: Server,
    _dir: tempfile::TempDir,
}

#[derive(Clone, Copy)]
enum Placement {
    Process,
    Inline,
}

/// A server with plugin `echo` in versions `versions` (`(name, weight,
/// extra env)`), plus `extra` keys in its table.
fn start(versions: &[(&str, u32, &str)], extra: &str) -> Rig {
    start_as(Placement::Process, versions, extra)
}

/// `start`, with the echo plugin in `placement`.
fn start_as(placement: Placement, versions: &[(&str, u32, &str)], extra: &str) -> Rig {
    let bin = echo_plugin_bin();
    let (exec, extra) = match placement {
        Placement::Process => (bin.to_path_buf(), extra.to_string()),
        Placement::Inline => (
            bin.parent().unwrap().join("libcitadel_plugin_echo.so"),
            format!("placement = \"inline\"\n{extra}"),
        ),
    };
    let exec = exec.display().to_string();
    let list: Vec<String> = versions
        .iter()
        .map(|(name, weight, env)| {
            format!(
                "{{ name = \"{name}\", exec = \"{exec}\", weight = {weight}, env = {{ {env} }} }}"
            )
        })
        .collect();
    let conf = format!(
        "[[plugin]]\nname = \"echo\"\ncores = \"none\"\nrestart-backoff-ms = 20\n{extra}\n\
         versions = [{}]\n",
        list.join(", ")
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugins.toml");
    std::fs::write(&path, conf).unwrap();
    let server = Server::start(&["--config", path.to_str().unwrap()]);
    Rig { server, _dir: dir }
}

fn call(con: &mut Connection, payload: &str) -> redis::RedisResult<String> {
    redis::cmd("PLUGIN")
        .arg("CALL")
        .arg("echo")
        .arg(payload)
        .query(con)
}

fn plugin(con: &mut Connection, args: &[&str]) -> String {
    redis::cmd("PLUGIN").arg(args).query(con).unwrap()
}

fn info(con: &mut Connection) -> HashMap<String, String> {
    let flat: Vec<String> = redis::cmd("PLUGIN")
        .arg("INFO")
        .arg("echo")
        .query(con)
        .unwrap();
    flat.chunks(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect()
}

/// Field `key` of version `version`'s line in PLUGIN INFO.
fn version_field(con: &mut Connection, version: &str, key: &str) -> String {
    let line = info(con)[&format!("version:{version}")].clone();
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_string))
        .unwrap_or_else(|| panic!("{key} missing in {line}"))
}

fn calls_of(con: &mut Connection, version: &str) -> u64 {
    version_field(con, version, "calls").parse().unwrap()
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Calls from `clients` connections until stopped; every reply is checked.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(url: String, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let threads = (0..clients)
            .map(|c| {
                let (stop, ok, url) = (stop.clone(), ok.clone(), url.clone());
                std::thread::spawn(move || {
                    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                    let mut failures = Vec::new();
                    let mut n = 0u64;
                    while !stop.load(Relaxed) {
                        let payload = format!("c{c}-{n}");
                        match call(&mut con, &payload) {
                            Ok(r) if r == payload.to_uppercase() => {
                                ok.fetch_add(1, Relaxed);
                            }
                            other => failures.push(format!("{payload}: {other:?}")),
                        }
                        n += 1;
                    }
                    failures
                })
            })
            .collect();
        Load { stop, ok, threads }
    }

    /// Waits until `more` further calls succeeded.
    fn wait_for(&self, more: u64) {
        let target = self.ok.load(Relaxed) + more;
        wait_until("calls under load", || self.ok.load(Relaxed) >= target);
    }

    /// Stops the load; returns (successful calls, failures).
    /// Stops the clients; the calls that succeeded, after checking that
    /// none failed.
    fn finish(self) -> u64 {
        self.stop.store(true, Relaxed);
        let failures: Vec<String> = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert!(
            failures.is_empty(),
            "{} failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        self.ok.load(Relaxed)
    }
}

#[test]
fn weights_are_honoured_and_keys_stick_to_a_version() {
    let rig = start(&[("v1", 70, ""), ("v2", 30, "")], "");
    let mut con = rig.server.client();
    // 10k calls, pipelined in batches.
    let total = 10_000;
    for batch in 0..total / 500 {
        let mut pipe = redis::pipe();
        for i in 0..500 {
            pipe.cmd("PLUGIN")
                .arg("CALL")
                .arg("echo")
                .arg(format!("b{batch}-{i}"));
        }
        let replies: Vec<String> = pipe.query(&mut con).unwrap();
        assert_eq!(replies.len(), 500);
    }
    let (v1, v2) = (calls_of(&mut con, "v1"), calls_of(&mut con, "v2"));
    assert_eq!(v1 + v2, total as u64);
    let share = v2 as f64 / total as f64;
    assert!(
        (share - 0.30).abs() <= 0.03,
        "v2 got {share:.4} of the calls"
    );

    // Sticky: a key's calls all go to one version; the keys split by weight.
    let mut on_v2 = 0;
    for k in 0..300 {
        let key = format!("user:{k}");
        let mut seen = Vec::new();
        for _ in 0..3 {
            let who: String = redis::cmd("PLUGIN")
                .arg(&["CALL", "echo", "WHO", "KEY", &key])
                .query(&mut con)
                .unwrap();
            seen.push(who.split('/').next().unwrap().to_string());
        }
        assert!(seen.iter().all(|v| *v == seen[0]), "{key}: {seen:?}");
        on_v2 += usize::from(seen[0] == "v2");
    }
    assert!((40..=140).contains(&on_v2), "{on_v2} of 300 keys on v2");
    // An RPC call naming the key (option `key=K`) lands on the same version.
    let mut rpc = citadel_tests::rpc::RawRpc::tcp(rig.server.rpc_port);
    for k in 0..50 {
        let key = format!("user:{k}");
        let resp: String = redis::cmd("PLUGIN")
            .arg(&["CALL", "echo", "WHO", "KEY", &key])
            .query(&mut con)
            .unwrap();
        let options = format!("key={key}");
        let reply = rpc.call(|w| w.call("echo", b"WHO", &options)).payload();
        let version = |who: &[u8]| {
            String::from_utf8_lossy(who)
                .split('/')
                .next()
                .map(String::from)
        };
        assert_eq!(version(&reply), version(resp.as_bytes()), "{key}");
    }

    // Bad input: clear errors.
    let mut err = |args: &[&str]| {
        redis::cmd("PLUGIN")
            .arg(args)
            .query::<String>(&mut con)
            .unwrap_err()
            .to_string()
    };
    assert!(err(&["WEIGHT", "echo", "v9", "5"]).contains("no such version"));
    assert!(err(&["WEIGHT", "echo", "v1", "-1"]).contains("0-10000"));
    assert!(err(&["WEIGHT", "nope", "v1", "5"]).contains("no such plugin"));
    assert!(err(&["ROLLBACK", "echo"]).contains("no previous weights"));
    assert!(err(&["CALL", "echo", "x", "KEX", "k"]).contains("syntax"));
}

#[test]
fn weight_promote_and_rollback_under_load_lose_no_call() {
    weights_change_under_load(Placement::Process);
}

#[test]
fn inline_weight_promote_and_rollback_under_load_lose_no_call() {
    weights_change_under_load(Placement::Inline);
}

fn weights_change_under_load(placement: Placement) {
    let rig = start_as(
        placement,
        &[("v1", 90, ""), ("v2", 10, "")],
        "instances = 2",
    );
    let mut con = rig.server.client();
    let load = Load::start(rig.server.url(), 4);
    load.wait_for(300);
    assert_eq!(plugin(&mut con, &["WEIGHT", "echo", "v2", "50"]), "OK");
    load.wait_for(300);
    assert_eq!(plugin(&mut con, &["PROMOTE", "echo", "v2"]), "OK");
    // v1 drains, then its processes stop. The version's state is its first
    // slot's once none takes calls, so another slot may still be answering
    // its last calls: wait for none in flight too.
    wait_until("v1 stopped", || {
        version_field(&mut con, "v1", "state") == "stopped"
            && version_field(&mut con, "v1", "in_flight") == "0"
    });
    let v1_calls = calls_of(&mut con, "v1");
    load.wait_for(300);
    assert_eq!(calls_of(&mut con, "v1"), v1_calls, "v1 has weight 0");
    // Back to the weights before PROMOTE (v1 90, v2 50): v1 starts again.
    assert_eq!(plugin(&mut con, &["ROLLBACK", "echo"]), "OK");
    assert_eq!(version_field(&mut con, "v1", "weight"), "90");
    // Running is its process up; it takes calls once ready, a moment
    // later, so the load may run a few hundred calls before v1 has any.
    wait_until("v1 serves again", || {
        version_field(&mut con, "v1", "state") == "running" && calls_of(&mut con, "v1") > v1_calls
    });
    assert_eq!(plugin(&mut con, &["PROMOTE", "echo", "v1"]), "OK");
    load.wait_for(300);
    assert_eq!(plugin(&mut con, &["ROLLBACK", "echo"]), "OK");
    load.wait_for(300);
    let ok = load.finish();
    assert!(ok >= 1800);
    let i = info(&mut con);
    assert_eq!((i["errors"].as_str(), i["timeouts"].as_str()), ("0", "0"));
}

#[test]
fn auto_rollback_takes_a_broken_version_out_of_traffic() {
    auto_rollback(Placement::Process);
}

#[test]
fn auto_rollback_judges_inline_versions_too() {
    auto_rollback(Placement::Inline);
}

fn auto_rollback(placement: Placement) {
    let rig = start_as(
        placement,
        &[("v1", 80, ""), ("v2", 20, "ECHO_FAIL = \"1\"")],
        "rollback = { error_rate = 0.05, window_s = 2 }",
    );
    let mut con = rig.server.client();
    let mut failed = 0;
    wait_until("the automatic rollback", || {
        for i in 0..50 {
            failed += usize::from(call(&mut con, &format!("x{i}")).is_err());
        }
        info(&mut con)["rollbacks"] == "1"
    });
    assert!(failed > 0, "v2 is broken");
    let i = info(&mut con);
    assert!(i["last_rollback"].starts_with("v2 error rate"), "{i:?}");
    assert_eq!(version_field(&mut con, "v2", "weight"), "0");
    assert_eq!(version_field(&mut con, "v1", "weight"), "100");
    for i in 0..300 {
        assert_eq!(call(&mut con, &format!("y{i}")).unwrap(), format!("Y{i}"));
    }
    // Shown in INFO (and so in /metrics, label version).
    let text: String = redis::cmd("INFO").arg("plugins").query(&mut con).unwrap();
    assert!(text.contains("plugin_echo;version=v2:weight=0,"), "{text}");
    // The baseline is never judged; ROLLBACK restores the broken weights.
    assert_eq!(plugin(&mut con, &["ROLLBACK", "echo"]), "OK");
    assert_eq!(version_field(&mut con, "v2", "weight"), "20");
}

#[test]
fn kill_9_of_an_instance_mid_burst_loses_nothing() {
    let rig = start(&[("v1", 50, ""), ("v2", 50, "")], "instances = 2");
    let mut con = rig.server.client();
    let load = Load::start(rig.server.url(), 4);
    load.wait_for(300);
    for victim in [0, 3] {
        let pids = info(&mut con)["pid"].clone();
        let pid = pids.split(',').nth(victim).unwrap().to_string();
        let status = Command::new("kill").args(["-9", &pid]).status().unwrap();
        assert!(status.success());
        wait_until("the instance restarted", || {
            let now = info(&mut con)["pid"].clone();
            let p = now.split(',').nth(victim).unwrap().to_string();
            p != pid && p != "0"
        });
        load.wait_for(300);
    }
    let ok = load.finish();
    assert!(ok >= 900);
    assert_eq!(info(&mut con)["restarts"], "2");
}

#[test]
fn reload_of_two_versions_under_load_loses_no_call() {
    versions_reload_under_load(Placement::Process);
}

#[test]
fn inline_reload_of_two_versions_under_load_loses_no_call() {
    versions_reload_under_load(Placement::Inline);
}

/// PLUGIN RELOAD of a plugin with two versions, twice, under load: each
/// version's instances are replaced one at a time by new ones started in
/// that version's spare slot (overlapped, as for one version), no call
/// fails, and both versions keep their traffic.
fn versions_reload_under_load(placement: Placement) {
    let rig = start_as(
        placement,
        &[("v1", 50, ""), ("v2", 50, "")],
        "instances = 2",
    );
    let mut con = rig.server.client();
    let load = Load::start(rig.server.url(), 4);
    for round in 1..=2u64 {
        load.wait_for(300);
        let before = info(&mut con)["pid"].clone();
        assert_eq!(plugin(&mut con, &["RELOAD", "echo"]), "OK");
        wait_until("every instance of both versions replaced", || {
            let i = info(&mut con);
            let now: Vec<&str> = i["pid"].split(',').collect();
            i["reloads"] == (4 * round).to_string()
                && i["state"] == "running,running,running,running"
                && now
                    .iter()
                    .all(|p| *p != "0" && !before.split(',').any(|b| b == *p))
        });
    }
    let (v1, v2) = (calls_of(&mut con, "v1"), calls_of(&mut con, "v2"));
    load.wait_for(300);
    assert!(calls_of(&mut con, "v1") > v1 && calls_of(&mut con, "v2") > v2);
    assert!(load.finish() >= 900);
    let i = info(&mut con);
    assert_eq!(
        (
            i["errors"].as_str(),
            i["timeouts"].as_str(),
            i["restarts"].as_str()
        ),
        ("0", "0", "0"),
        "{i:?}"
    );
    assert!(i["last_change"].contains("upgraded"), "{i:?}");
}

/// An inline version taken to weight 0 while its handler is stuck is
/// stopped at its stop timeout and left detached, as a reload does,
/// instead of waiting for the stuck call to end.
#[test]
fn an_inline_version_at_weight_0_detaches_a_stuck_handler() {
    let rig = start_as(
        Placement::Inline,
        &[("v1", 100, ""), ("v2", 0, "")],
        "stop-timeout-ms = 200\ntimeout-ms = 30000\n",
    );
    let mut con = rig.server.client();
    let url = rig.server.url();
    let sleeper = std::thread::spawn(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        call(&mut con, "SLEEP 3000")
    });
    wait_until("the call in v1's handler", || {
        info(&mut con)["in_flight"] == "1"
    });
    assert_eq!(plugin(&mut con, &["WEIGHT", "echo", "v2", "100"]), "OK");
    assert_eq!(plugin(&mut con, &["WEIGHT", "echo", "v1", "0"]), "OK");
    wait_until("v1's stuck thread detached", || {
        info(&mut con)["detached"] == "1"
    });
    assert!(!sleeper.is_finished(), "detached before its call ended");
    assert_eq!(call(&mut con, "after").unwrap(), "AFTER");
    assert_eq!(sleeper.join().unwrap().unwrap(), "SLEPT 3000");
}
