//! Plugins end to end: the real `citadel` binary supervising the real echo
//! plugin (`plugins/examples/echo`, Rust) and the Python example
//! (`plugins/python/examples/upper.py`). The echo plugin crashes on the
//! payload `CRASH` (a poison request) and answers `SLEEP <ms>` after
//! sleeping that long (a slow plugin).

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use citadel_tests::plugin_rig::{call, field, info, wait_until, Load, Rig};
use citadel_tests::redis;
use citadel_tests::{echo_plugin_bin, read_n, run_to_exit, workspace_root};

fn echo(extra: &str) -> String {
    format!(
        "[[plugin]]\nname = \"echo\"\nexec = \"{}\"\n{extra}\n",
        echo_plugin_bin().display()
    )
}

fn upper() -> String {
    let py = workspace_root().join("plugins/python");
    format!(
        "[[plugin]]\nname = \"upper\"\nexec = \"python3\"\nargs = [\"{}\"]\n\
         env = {{ PYTHONPATH = \"{}\" }}\ncores = \"none\"\n",
        py.join("examples/upper.py").display(),
        py.display()
    )
}

/// Running and not a zombie.
fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

fn kill9(pid: u64) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn python3_available() -> bool {
    Command::new("python3").arg("--version").output().is_ok()
}

#[test]
fn call_round_trip_from_the_redis_crate_and_redis_cli() {
    let with_python = python3_available();
    let mut conf = echo("");
    if with_python {
        conf.push_str(&upper());
    }
    let rig = Rig::start(&conf);
    let mut con = rig.server.client();
    assert_eq!(call(&mut con, "echo", "hello").unwrap(), "HELLO");
    assert_eq!(call(&mut con, "ECHO", "").unwrap(), "");
    let big = "x".repeat(100_000);
    assert_eq!(call(&mut con, "echo", &big).unwrap(), big.to_uppercase());
    if with_python {
        assert_eq!(
            call(&mut con, "upper", "from python").unwrap(),
            "FROM PYTHON"
        );
    }
    let err = call(&mut con, "nope", "x").unwrap_err();
    assert!(err.to_string().contains("no such plugin"), "{err}");
    // Other commands still work, also pipelined after a plugin call.
    let (a, b, c): (String, String, String) = redis::pipe()
        .cmd("SET")
        .arg("k")
        .arg("v")
        .cmd("PLUGIN")
        .arg("CALL")
        .arg("echo")
        .arg("mid")
        .cmd("GET")
        .arg("k")
        .query(&mut con)
        .unwrap();
    assert_eq!((a.as_str(), b.as_str(), c.as_str()), ("OK", "MID", "v"));

    let out = match Command::new("redis-cli")
        .args([
            "-p",
            &rig.server.port.to_string(),
            "plugin",
            "call",
            "echo",
            "cli",
        ])
        .output()
    {
        Ok(out) => out,
        Err(_) => {
            eprintln!("redis-cli not installed: skipping its part");
            return;
        }
    };
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "CLI");
}

#[test]
fn plugin_list_info_and_info_plugins() {
    let rig = Rig::start(&echo("timeout-ms = 1234\nmax-inflight = 77"));
    let mut con = rig.server.client();
    call(&mut con, "echo", "x").unwrap();
    let fields = info(&mut con, "echo");
    for key in [
        "name",
        "state",
        "pid",
        "cores",
        "restarts",
        "in_flight",
        "processed",
        "p50_us",
        "p99_us",
        "ring_depth_bytes",
    ] {
        assert!(
            fields.contains_key(key),
            "PLUGIN INFO lacks {key}: {fields:?}"
        );
    }
    assert_eq!(fields["state"], "running");
    assert_eq!(fields["processed"], "1");
    assert_eq!(fields["restarts"], "0");
    assert_eq!(fields["timeout_ms"], "1234");
    assert_eq!(fields["max_inflight"], "77");
    assert!(alive(fields["pid"].parse().unwrap()));
    // The core plan: the plugin got a core of its own when there is a spare one.
    let cpus = std::thread::available_parallelism().unwrap().get();
    if cpus > 1 {
        assert_ne!(fields["cores"], "shared");
        // Pinned: the process may run on its cores only.
        let status = std::fs::read_to_string(format!("/proc/{}/status", fields["pid"])).unwrap();
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim();
        assert_eq!(allowed, fields["cores"], "{status}");
    }

    let list: Vec<String> = redis::cmd("PLUGIN").arg("LIST").query(&mut con).unwrap();
    assert_eq!(list.len(), 1);
    assert!(
        list[0].starts_with("name=echo state=running pid="),
        "{list:?}"
    );

    let text: String = redis::cmd("INFO").arg("plugins").query(&mut con).unwrap();
    assert!(text.contains("# Plugins"), "{text}");
    assert!(text.contains("core_plan:server="), "{text}");
    assert!(text.contains("plugin_echo:state=running,pid="), "{text}");
    assert!(text.contains("processed=1"), "{text}");
    assert!(rig.server.log().contains("core plan"));

    let err = redis::cmd("PLUGIN")
        .arg("INFO")
        .arg("nope")
        .query::<Vec<String>>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("no such plugin"), "{err}");
}

/// 1,000 connections with one call each = 1,000 requests in the rings when
/// the plugin is killed with SIGKILL; the first one, a slow call, keeps the
/// plugin busy so the others are still queued, uncommitted, in the rings.
#[test]
fn kill_9_with_1000_requests_in_flight_answers_every_one() {
    let rig = Rig::start(&echo("restart-backoff-ms = 50\nmax-inflight = 2000"));
    let mut con = rig.server.client();
    let pid = field(&mut con, "echo", "pid");
    let mut slow = rig.server.raw();
    slow.write_all(b"PLUGIN CALL echo \"SLEEP 1500\"\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));

    let mut conns = Vec::new();
    for c in 0..1000 {
        let mut s = rig.server.raw();
        let payload = format!("req-{c}");
        let req = format!(
            "*4\r\n$6\r\nPLUGIN\r\n$4\r\nCALL\r\n$4\r\necho\r\n${}\r\n{payload}\r\n",
            payload.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let up = payload.to_uppercase();
        conns.push((s, format!("${}\r\n{up}\r\n", up.len()).into_bytes()));
    }
    wait_until("1,000 calls in flight", Duration::from_secs(10), || {
        field(&mut con, "echo", "in_flight") >= 1000
    });
    kill9(pid);
    for (s, want) in &mut conns {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let got = read_n(s, want.len());
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    }
    assert_eq!(read_n(&mut slow, 16), b"$10\r\nSLEPT 1500\r\n");
    let fields = info(&mut con, "echo");
    assert!(
        fields["restarts"].parse::<u64>().unwrap() >= 1,
        "{fields:?}"
    );
    assert_ne!(fields["pid"], pid.to_string());
    assert_eq!(fields["errors"], "0");
    assert_eq!(fields["in_flight"], "0");
}

#[test]
fn poison_request_gets_an_error_and_the_plugin_keeps_serving() {
    let rig = Rig::start(&echo("restart-backoff-ms = 50\nmax-attempts = 3"));
    let mut con = rig.server.client();
    let mut other = rig.server.client();
    let started = Instant::now();
    let err = call(&mut con, "echo", "CRASH").unwrap_err().to_string();
    assert!(
        err.contains("poison") && err.contains("3 attempts"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        call(&mut other, "echo", "still here").unwrap(),
        "STILL HERE"
    );
    assert_eq!(call(&mut con, "echo", "me too").unwrap(), "ME TOO");
    let fields = info(&mut con, "echo");
    assert_eq!(fields["restarts"], "3", "{fields:?}");
    assert_eq!(fields["poisoned"], "1", "{fields:?}");
    assert_eq!(fields["state"], "running");
}

#[test]
fn reload_under_load_has_zero_errors() {
    let rig = Rig::start(&echo(""));
    let mut con = rig.server.client();
    let load = Load::start(&rig, 8);
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        let pid = field(&mut con, "echo", "pid");
        if round == 2 {
            rig.server.signal("HUP");
        } else {
            let ok: String = redis::cmd("PLUGIN")
                .arg("RELOAD")
                .arg("echo")
                .query(&mut con)
                .unwrap();
            assert_eq!(ok, "OK");
        }
        wait_until("the new plugin process", Duration::from_secs(10), || {
            let f = info(&mut con, "echo");
            f["state"] == "running" && f["pid"] != pid.to_string() && f["pid"] != "0"
        });
        // The old instance stops once its calls in flight are answered,
        // which may be a little after the new one took over.
        wait_until(
            "the old plugin process to exit",
            Duration::from_secs(10),
            || !alive(pid),
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let total = load.finish();
    assert!(total > 100, "only {total} calls");
    let fields = info(&mut con, "echo");
    assert_eq!(fields["reloads"], "3", "{fields:?}");
    assert_eq!(fields["restarts"], "0", "{fields:?}");
    assert_eq!(fields["errors"], "0", "{fields:?}");
}

#[test]
fn sigterm_answers_calls_in_flight_stops_plugins_and_exits_0() {
    let mut rig = Rig::start(&echo(""));
    let mut con = rig.server.client();
    let pid = field(&mut con, "echo", "pid");
    let mut socks = Vec::new();
    for i in 0..3 {
        let mut s = rig.server.raw();
        s.write_all(
            format!("PLUGIN CALL echo \"SLEEP 200\"\r\nPLUGIN CALL echo after{i}\r\n").as_bytes(),
        )
        .unwrap();
        socks.push(s);
    }
    wait_until("calls in flight", Duration::from_secs(5), || {
        field(&mut con, "echo", "in_flight") >= 2
    });
    rig.server.signal("TERM");
    for (i, s) in socks.iter_mut().enumerate() {
        let want = format!("$9\r\nSLEPT 200\r\n$6\r\nAFTER{i}\r\n");
        let got = read_n(s, want.len());
        assert_eq!(String::from_utf8_lossy(&got), want);
    }
    let status = rig.server.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status}\n{}", rig.server.log());
    assert!(!alive(pid), "plugin {pid} outlived the server");
    let log = rig.server.log();
    assert!(log.contains("plugin stopped"), "{log}");
}

#[test]
fn a_call_past_its_timeout_is_an_error_not_a_hang() {
    let rig = Rig::start(&echo("timeout-ms = 300"));
    let mut con = rig.server.client();
    let started = Instant::now();
    let err = call(&mut con, "echo", "SLEEP 1500")
        .unwrap_err()
        .to_string();
    let took = started.elapsed();
    assert!(err.contains("timeout") && err.contains("300 ms"), "{err}");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1200),
        "{took:?}"
    );
    // The plugin answers again once the slow request is done.
    wait_until("the plugin", Duration::from_secs(5), || {
        call(&mut con, "echo", "ok").is_ok_and(|r| r == "OK")
    });
    assert!(field(&mut con, "echo", "timeouts") >= 1);
}

#[test]
fn a_full_ring_is_a_clear_error() {
    // 4 KiB rings hold two 1,500-byte requests each.
    let rig = Rig::start(&echo("ring-capacity = 4096"));
    // A slow call keeps the plugin busy, so nothing is consumed meanwhile.
    let mut busy = rig.server.raw();
    busy.write_all(b"PLUGIN CALL echo \"SLEEP 1000\"\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let payload = "p".repeat(1500);
    let mut socks = Vec::new();
    for _ in 0..16 {
        let mut s = rig.server.raw();
        s.write_all(format!("PLUGIN CALL echo {payload}\r\n").as_bytes())
            .unwrap();
        socks.push(s);
    }
    let mut full = 0;
    for s in &mut socks {
        let line = citadel_tests::read_line(s);
        if line.starts_with('-') {
            assert!(line.contains("ring is full"), "{line}");
            full += 1;
        } else {
            assert_eq!(line, "$1500\r\n");
        }
    }
    assert!(full > 0, "no call was refused");
    assert_eq!(read_n(&mut busy, 16), b"$10\r\nSLEPT 1000\r\n");
    let mut con = rig.server.client();
    assert!(field(&mut con, "echo", "rejected") >= full);
    // The stats region counts the refusals too, for /metrics and citadel-top.
    let region = format!("{}.stats", rig.server.cache_file().display());
    let snapshot = citadel_telemetry::Reader::open(region.as_ref())
        .unwrap()
        .snapshot();
    let echo = snapshot.plugins.iter().find(|p| p.name == "echo").unwrap();
    assert!(echo.refused >= full, "{echo:?}");
}

#[test]
fn a_missing_executable_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[plugin]]\nname = \"ghost\"\nexec = \"/nonexistent/ghost-plugin\"\n",
    )
    .unwrap();
    let port = citadel_tests::free_port().to_string();
    let (status, out) = run_to_exit(&["--config", path.to_str().unwrap(), "--port", &port]);
    assert!(!status.success());
    assert!(
        out.contains("ghost")
            && out.contains("/nonexistent/ghost-plugin")
            && out.contains("not found"),
        "{out}"
    );
}
