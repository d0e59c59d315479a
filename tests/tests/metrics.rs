//! The stats region and the Prometheus endpoint, end to end: a real
//! server with `--metrics-port`, its scrape checked by `promtool check
//! metrics`, a real Prometheus (started here) scraping it and answering a
//! PromQL query, and the region's counters surviving a restart, read
//! through `citadel_telemetry::Reader` as `citadel-top` reads them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use citadel_telemetry::Reader;
use citadel_tests::clients::{set_then_gets, wait_until};
use citadel_tests::{echo_plugin_bin, free_port, workspace_root, Server};

const PATIENCE: Duration = Duration::from_secs(60);

/// A server with the endpoint on a free port and one plugin (so INFO's
/// plugin lines are in the scrape too); the config file lives in `_dir`.
struct Rig {
    server: Server,
    metrics_port: u16,
    _dir: tempfile::TempDir,
}

fn start() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("citadel.toml");
    let plugin = format!(
        "[[plugin]]\nname = \"echo\"\nexec = \"{}\"\n",
        echo_plugin_bin().display()
    );
    std::fs::write(&config, plugin).unwrap();
    let metrics_port = free_port();
    let port = metrics_port.to_string();
    let server = Server::start(&[
        "--metrics-port",
        &port,
        "--config",
        config.to_str().unwrap(),
    ]);
    Rig {
        server,
        metrics_port,
        _dir: dir,
    }
}

/// `GET path` on `127.0.0.1:port` (HTTP/1.0, read to the end): status
/// code and body.
fn http_get(port: u16, path: &str) -> (u16, String) {
    request(port, &format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n"))
}

fn request(port: u16, head: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// The value of the sample line `series value` in a scrape.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

const GET_CALLS: &str = "citadel_commands_total{command=\"get\"}";
const ECHO_CALLS: &str = "citadel_plugin_calls_total{plugin=\"echo\",version=\"default\"}";

/// `n` calls of the echo plugin (PLUGIN CALL), each answered (upper-cased).
fn echo_calls(server: &Server, n: usize) {
    let mut con = server.client();
    for i in 0..n {
        let reply: String = redis::cmd("PLUGIN")
            .arg(&["CALL", "echo", &format!("hello {i}")])
            .query(&mut con)
            .unwrap();
        assert_eq!(reply, format!("HELLO {i}"));
    }
}

/// The echo plugin's counters in the region, as `citadel-top` reads them.
fn echo_version(reader: &Reader) -> citadel_telemetry::VersionTotals {
    let s = reader.snapshot();
    let echo = s.plugins.iter().find(|p| p.name == "echo");
    echo.and_then(|p| p.versions.iter().find(|v| v.name == "default"))
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_scrape_passes_promtool_and_counts_what_ran() {
    let rig = start();
    set_then_gets(&rig.server, 25);
    echo_calls(&rig.server, 9);
    // RPC operations are counted per method beside the commands.
    let mut rpc = citadel_tests::rpc::RawRpc::tcp(rig.server.rpc_port);
    for _ in 0..7 {
        assert_eq!(rpc.call(|w| w.get(b"k")).error(), None);
    }
    assert!(rpc
        .call(|w| w.call("no-such-plugin", b"", ""))
        .error()
        .is_some());
    let mut scrape = String::new();
    wait_until("GETs, RPC and INFO in the scrape", PATIENCE, || {
        scrape = http_get(rig.metrics_port, "/metrics").1;
        sample(&scrape, GET_CALLS) == Some(25.0)
            && sample(&scrape, "citadel_commands_total{command=\"rpc.get\"}") == Some(7.0)
            && sample(&scrape, "citadel_info_keyspace_hits").is_some_and(|n| n >= 25.0)
    });
    assert_eq!(
        sample(
            &scrape,
            "citadel_command_failures_total{command=\"rpc.call\"}"
        ),
        Some(1.0),
        "{scrape}"
    );
    assert!(scrape.contains("citadel_command_duration_seconds_count{command=\"get\"} 25\n"));
    assert!(scrape.contains("# TYPE citadel_shed_total counter"));
    assert!(
        scrape.contains("citadel_info_plugins_state{name=\"plugin_echo\",value=\"running\"} 1\n")
            && scrape.contains("citadel_info_plugins_processed{name=\"plugin_echo\"}"),
        "{scrape}"
    );
    assert!(scrape.contains("citadel_core_commands_total{core=\"1\"}"));
    // Plugin calls per plugin and version, from the region's plugin table.
    assert_eq!(sample(&scrape, ECHO_CALLS), Some(9.0), "{scrape}");
    let labels = "plugin=\"echo\",version=\"default\"";
    for (series, value) in [
        ("citadel_plugin_errors_total", 0.0),
        ("citadel_plugin_in_flight", 0.0),
        ("citadel_plugin_call_duration_seconds_count", 9.0),
    ] {
        assert_eq!(
            sample(&scrape, &format!("{series}{{{labels}}}")),
            Some(value),
            "{series}\n{scrape}"
        );
    }
    assert!(scrape.contains("# TYPE citadel_plugin_call_duration_seconds histogram\n"));
    assert!(scrape.contains(&format!(
        "citadel_plugin_call_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 9\n"
    )));

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; tests/run.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{scrape}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Anything else gets a clear refusal, and the endpoint goes on.
    assert_eq!(http_get(rig.metrics_port, "/").0, 404);
    assert_eq!(
        request(rig.metrics_port, "POST /metrics HTTP/1.1\r\n\r\n").0,
        405
    );
    assert_eq!(request(rig.metrics_port, "nonsense\r\n\r\n").0, 400);
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(request(rig.metrics_port, &huge).0, 431);
    assert_eq!(http_get(rig.metrics_port, "/metrics").0, 200);
}

#[test]
fn the_region_counters_survive_a_restart() {
    let mut rig = start();
    let region = PathBuf::from(format!("{}.stats", rig.server.cache_file().display()));
    set_then_gets(&rig.server, 10);
    echo_calls(&rig.server, 4);
    let reader = Reader::open(&region).unwrap();
    // Read live, from this process, as the calls are counted.
    assert_eq!(echo_version(&reader).calls, 4);
    let get_calls = |r: &Reader| {
        r.snapshot()
            .commands
            .iter()
            .find(|c| c.name == "get")
            .map_or(0, |c| c.calls)
    };
    assert_eq!(get_calls(&reader), 10);
    rig.server.signal("TERM");
    rig.server.wait_exit(PATIENCE);
    rig.server.restart(false);
    set_then_gets(&rig.server, 5);
    echo_calls(&rig.server, 3);
    // The old mapping still sees the same file: reused, not replaced.
    assert_eq!(get_calls(&reader), 15);
    let echo = echo_version(&reader);
    assert_eq!((echo.calls, echo.in_flight), (7, 0));
    assert!(echo.quantile_nanos(0.99).is_some());
    let after = Reader::open(&region).unwrap().snapshot();
    assert_eq!(after.reopens, 1);
    assert_eq!(after.writer_pid, u64::from(rig.server.pid()));
    let (_, scrape) = http_get(rig.metrics_port, "/metrics");
    assert_eq!(sample(&scrape, GET_CALLS), Some(15.0));
    assert_eq!(sample(&scrape, ECHO_CALLS), Some(7.0));
    // PLUGIN INFO: its own counts since this start, the region's lifetime.
    let info = citadel_tests::plugin_rig::info(&mut rig.server.client(), "echo");
    let line = &info["version:default"];
    let words: Vec<&str> = line.split(' ').collect();
    for field in [
        "calls=3",
        "errors=0",
        "lifetime_calls=7",
        "lifetime_errors=0",
    ] {
        assert!(words.contains(&field), "{field} missing in {line}");
    }
    assert_eq!(
        sample(&scrape, "citadel_stats_region_reopens_total"),
        Some(1.0)
    );
}

/// A Prometheus server run by the test, killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target_port: u16) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: citadel\n    static_configs:\n\
                 \x20     - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian package; tests/run.sh installs it)");
        Prometheus {
            child,
            port,
            _dir: dir,
        }
    }

    /// The result vector of an instant PromQL query (empty while the
    /// server is not up yet).
    fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        self.answer(promql)["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The API's whole answer to an instant query (Null if none).
    fn answer(&self, promql: &str) -> serde_json::Value {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect();
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return serde_json::Value::Null;
        };
        drop(s.write_all(format!("GET /api/v1/query?query={encoded} HTTP/1.0\r\n\r\n").as_bytes()));
        let mut reply = String::new();
        drop(s.read_to_string(&mut reply));
        let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prometheus_scrapes_citadel_and_answers_promql() {
    let rig = start();
    let prometheus = Prometheus::start(rig.metrics_port);
    let promql = "rate(citadel_commands_total{command=\"get\"}[5s]) > 0";
    wait_until("a positive GET rate in Prometheus", PATIENCE, || {
        set_then_gets(&rig.server, 20);
        !prometheus.query(promql).is_empty()
    });
    let up = prometheus.query("up{job=\"citadel\"} == 1");
    assert_eq!(up.len(), 1, "{up:?}");
    let hits = prometheus.query("citadel_info_keyspace_hits > 0");
    assert_eq!(hits.len(), 1, "{hits:?}");

    // Every query of the Grafana dashboard is valid PromQL over these names.
    let path = workspace_root().join("deploy/grafana/citadel-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let exprs: Vec<&str> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.len() > 15);
    for expr in exprs {
        let answer = prometheus.answer(&expr.replace("$instance", ".*"));
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
    }
    // And the panels that should have data here do.
    let per_core = "sum by (core) (rate(citadel_core_commands_total[1m]))";
    assert_eq!(prometheus.query(per_core).len(), 2);
}

/// Shed requests and hot keys reach the scrape: writes over the per-key
/// limit are refused with `-OVERLOAD key` and counted by layer and reason,
/// and the key they hammer is the hottest.
#[test]
fn shed_writes_and_hot_keys_are_scraped() {
    let rig = start();
    let mut c = rig.server.client();
    let _: () = citadel_tests::redis::cmd("CONFIG")
        .arg("SET")
        .arg("hotkeys-write-limit")
        .arg("10")
        .query(&mut c)
        .unwrap();
    let mut shed = 0;
    for i in 0..400 {
        let r: citadel_tests::redis::RedisResult<()> = citadel_tests::redis::cmd("SET")
            .arg("metrics:hot")
            .arg(i)
            .query(&mut c);
        if let Err(e) = r {
            assert!(e.to_string().contains("OVERLOAD"), "{e}");
            shed += 1;
        }
    }
    assert!(shed > 0, "400 writes in a row, none over 10/s");
    let series = "citadel_shed_total{layer=\"key\",reason=\"key_write_rate\"";
    let mut scrape = String::new();
    wait_until(
        "the shed writes and the hot key in the scrape",
        PATIENCE,
        || {
            scrape = http_get(rig.metrics_port, "/metrics").1;
            let counted: f64 = scrape
                .lines()
                .filter(|l| l.starts_with(series))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            counted >= shed as f64 && scrape.contains("citadel_hot_key_rate{key=\"metrics:hot\"")
        },
    );
}
