//! The deployment files under deploy/: the systemd unit verifies with
//! `systemd-analyze verify` and the server it starts reports READY=1,
//! WATCHDOG=1 and STOPPING=1 on a NOTIFY_SOCKET; the Kubernetes manifests
//! load as YAML and agree with each other; and every flag the unit and the
//! manifests pass is one `citadel --help` lists.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use citadel_tests::{citadel_bin, free_port, workspace_root};
use serde_json::Value;

const UNIT: &str = "deploy/systemd/citadel.service";
const CACHE_MOUNT: &str = "deploy/systemd/var-cache-citadel.mount";
const ENV_FILE: &str = "deploy/systemd/citadel.env";
const UNIT_CONFIG: &str = "deploy/systemd/citadel.toml";
const K8S: &str = "deploy/k8s";

fn read(rel: &str) -> String {
    std::fs::read_to_string(workspace_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The unit's `ExecStart=` words after the binary, with `$CITADEL_OPTS`
/// replaced by the example environment file's value.
fn unit_command_line() -> Vec<String> {
    let unit = read(UNIT);
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart= in the unit");
    let opts = read(ENV_FILE)
        .lines()
        .find_map(|l| l.strip_prefix("CITADEL_OPTS="))
        .expect("CITADEL_OPTS= in the environment file")
        .to_string();
    exec.split_whitespace()
        .skip(1)
        .flat_map(|w| match w {
            "$CITADEL_OPTS" | "${CITADEL_OPTS}" => {
                opts.split_whitespace().map(str::to_string).collect()
            }
            w => vec![w.to_string()],
        })
        .collect()
}

/// `--flag value` pairs (every citadel flag the unit passes takes a value).
fn flag_pairs(words: &[String]) -> Vec<(String, String)> {
    words
        .chunks(2)
        .map(|pair| {
            assert!(pair[0].starts_with("--") && pair.len() == 2, "{words:?}");
            (pair[0].clone(), pair[1].clone())
        })
        .collect()
}

#[test]
fn systemd_unit_verifies() {
    // verify checks that ExecStart's binary exists: point it at this build.
    let text = read(UNIT).replace(
        "/usr/local/bin/citadel",
        &citadel_bin().display().to_string(),
    );
    verify_unit(UNIT, "citadel.service", &text);
}

#[test]
fn huge_page_cache_mount_unit_verifies() {
    verify_unit(CACHE_MOUNT, "var-cache-citadel.mount", &read(CACHE_MOUNT));
}

/// `systemd-analyze verify` of a unit's text, written as `name` (a mount
/// unit's name must match its Where=); skipped where it cannot run.
fn verify_unit(path: &str, name: &str, text: &str) {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: systemd-analyze is not installed (tests/run.sh installs systemd)");
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join(name);
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Failed to connect") || stderr.contains("Failed to initialize manager") {
        eprintln!("SKIPPED: systemd-analyze cannot run here: {stderr}");
        return;
    }
    // Unknown keys and bad values are warnings with exit status 0: any
    // output about the unit is a failure.
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify {path}:\n{stderr}"
    );
}

/// Receives the next notification (panics after 20 s of silence).
fn next_message(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a notification within 20 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn the_unit_command_line_notifies_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let port = free_port().to_string();
    // The unit's own flags and example files, with this test's paths and
    // port in place of the machine-wide ones.
    let mut overrides: BTreeMap<&str, String> = BTreeMap::from([
        (
            "--config",
            workspace_root().join(UNIT_CONFIG).display().to_string(),
        ),
        ("--discovery-dir", path("discovery")),
    ]);
    let mut args: Vec<String> = Vec::new();
    for (flag, value) in flag_pairs(&unit_command_line()) {
        let value = overrides.remove(flag.as_str()).unwrap_or(value);
        args.extend([flag, value]);
    }
    assert!(overrides.is_empty(), "the unit lacks {overrides:?}");
    args.extend(
        [
            ("--port", port.clone()),
            ("--rpc-port", "0".into()),
            ("--maxmemory", "64mb".into()),
            ("--cache-file", path("cache")),
            ("--unixsocket", path("resp.sock")),
            ("--rpc-unixsocket", path("rpc.sock")),
        ]
        .into_iter()
        .flat_map(|(f, v)| [f.to_string(), v]),
    );

    let notify_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&notify_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let mut child = Command::new(citadel_bin())
        .args(&args)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "3000000")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let server_log = || std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();

    let ready = next_message(&socket);
    assert!(ready.starts_with("READY=1\n"), "{ready}\n{}", server_log());
    assert!(
        ready.contains(&format!("MAINPID={}", child.id())),
        "{ready}"
    );
    // Ready means listening: a client is served at once.
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let pong: String = redis::cmd("PING")
        .query(&mut client.get_connection().unwrap())
        .unwrap();
    assert_eq!(pong, "PONG");
    let ping = next_message(&socket);
    assert_eq!(ping, "WATCHDOG=1", "{}", server_log());

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let stopping = loop {
        let m = next_message(&socket);
        if m != "WATCHDOG=1" {
            break m;
        }
    };
    assert!(stopping.starts_with("STOPPING=1"), "{stopping}");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}\n{}", server_log());
    let log = server_log();
    assert!(log.contains("numa plan"), "{log}");
}

/// Every manifest under deploy/k8s, as JSON (PyYAML's safe_load_all).
fn manifests() -> Vec<(String, Value)> {
    let dir = workspace_root().join(K8S);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    let script = "import json, sys, yaml\n\
                  docs = [[f, d] for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d is not None]\n\
                  print(json.dumps(docs))";
    let out = Command::new("python3")
        .args(["-c", script])
        .args(&files)
        .output()
        .expect("python3 (tests/run.sh installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'yaml'"),
        "PyYAML is missing: run tests/run.sh (it installs pyyaml)"
    );
    assert!(
        out.status.success(),
        "a manifest is not valid YAML:\n{stderr}"
    );
    let docs: Vec<(String, Value)> = serde_json::from_slice(&out.stdout).unwrap();
    docs.into_iter()
        .map(|(f, d)| {
            let name = Path::new(&f)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, d)
        })
        .collect()
}

fn of_kind<'a>(docs: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|(_, d)| d["kind"] == kind)
        .map(|(_, d)| d)
        .collect()
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().expect("a selector map");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn k8s_manifests_are_complete_and_consistent() {
    let docs = manifests();
    for (file, d) in &docs {
        for field in ["apiVersion", "kind", "metadata"] {
            assert!(!d[field].is_null(), "{file}: no {field}");
        }
        assert!(
            d["metadata"]["name"].is_string(),
            "{file}: no metadata.name"
        );
        let body = if d["kind"] == "ConfigMap" {
            "data"
        } else {
            "spec"
        };
        assert!(d[body].is_object(), "{file}: no {body}");
    }
    let [sts] = of_kind(&docs, "StatefulSet")[..] else {
        panic!("want one StatefulSet")
    };
    let [svc] = of_kind(&docs, "Service")[..] else {
        panic!("want one Service")
    };
    let [cm] = of_kind(&docs, "ConfigMap")[..] else {
        panic!("want one ConfigMap")
    };
    let [pdb] = of_kind(&docs, "PodDisruptionBudget")[..] else {
        panic!("want one PodDisruptionBudget")
    };

    let pod = &sts["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert_eq!(
        svc["spec"]["clusterIP"], "None",
        "the Service must be headless"
    );
    assert_eq!(sts["spec"]["serviceName"], svc["metadata"]["name"]);
    assert!(labels_match(
        &sts["spec"]["selector"]["matchLabels"],
        labels
    ));
    assert!(labels_match(&svc["spec"]["selector"], labels));
    assert!(labels_match(
        &pdb["spec"]["selector"]["matchLabels"],
        labels
    ));
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");

    let spec = &pod["spec"];
    let containers = spec["containers"].as_array().unwrap();
    let mut ports: BTreeMap<String, i64> = BTreeMap::new();
    for c in containers {
        for p in c["ports"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap().to_string();
            ports.insert(name, p["containerPort"].as_i64().unwrap());
        }
        // Guaranteed QoS: requests == limits in every container.
        let r = &c["resources"];
        assert_eq!(
            r["requests"], r["limits"],
            "{}: requests != limits",
            c["name"]
        );
    }
    let port_of = |target: &Value| -> i64 {
        match target {
            Value::String(name) => *ports.get(name).unwrap_or_else(|| panic!("no port {name}")),
            Value::Number(n) => n.as_i64().unwrap(),
            other => panic!("bad port {other}"),
        }
    };
    for p in svc["spec"]["ports"].as_array().unwrap() {
        let target = if p["targetPort"].is_null() {
            &p["port"]
        } else {
            &p["targetPort"]
        };
        assert!(
            ports.values().any(|&c| c == port_of(target)),
            "Service port {p}"
        );
    }
    let scrape: i64 = annotations["prometheus.io/port"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ports.values().any(|&c| c == scrape), "scrape port {scrape}");

    let citadel = containers
        .iter()
        .find(|c| c["name"] == "citadel")
        .expect("a container named citadel");
    let cpu = &citadel["resources"]["limits"]["cpu"];
    let whole_cpus = cpu
        .as_str()
        .map_or(cpu.is_u64(), |s| s.parse::<u32>().is_ok());
    assert!(
        whole_cpus,
        "citadel needs an integer CPU count for exclusive cores: {cpu}"
    );
    for probe in ["livenessProbe", "readinessProbe"] {
        assert!(citadel[probe].is_object(), "citadel has no {probe}");
        if let Some(port) = citadel[probe]["tcpSocket"].get("port") {
            assert_eq!(port_of(port), ports["resp"], "{probe}");
        }
    }
    let toml = cm["data"]["citadel.toml"]
        .as_str()
        .expect("citadel.toml in the ConfigMap");
    let resp_port = toml
        .lines()
        .find_map(|l| l.strip_prefix("port = "))
        .expect("port in citadel.toml");
    assert_eq!(resp_port.trim().parse::<i64>().unwrap(), ports["resp"]);
    let args: Vec<&str> = citadel["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let announce = args[args
        .iter()
        .position(|a| *a == "--cluster-announce")
        .unwrap()
        + 1];
    assert_eq!(announce, format!("$(POD_IP):{}", ports["resp"]));
    let env: BTreeSet<&str> = citadel["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(env.contains("POD_IP"), "POD_IP from the downward API");
    let shm = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["emptyDir"]["medium"] == "Memory")
        .expect("an emptyDir of medium Memory");
    let mounted = citadel["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == shm["name"] && m["mountPath"] == "/dev/shm");
    assert!(mounted, "the Memory emptyDir is not mounted at /dev/shm");
    assert!(
        shm["emptyDir"]["sizeLimit"].is_string(),
        "size the /dev/shm volume"
    );
}

/// `--flags` of the citadel containers' command lines, with where they are.
fn manifest_flags(docs: &[(String, Value)]) -> Vec<(String, String)> {
    let mut flags = Vec::new();
    for (file, d) in docs {
        let containers = d["spec"]["template"]["spec"]["containers"].as_array();
        for c in containers
            .into_iter()
            .flatten()
            .filter(|c| c["name"] == "citadel")
        {
            let words = c["command"]
                .as_array()
                .into_iter()
                .chain(c["args"].as_array());
            for w in words.flatten().filter_map(Value::as_str) {
                if let Some(flag) = w.strip_prefix("--") {
                    let flag = flag.split('=').next().unwrap();
                    flags.push((format!("--{flag}"), format!("{K8S}/{file}")));
                }
            }
        }
    }
    flags
}

#[test]
fn every_deployed_flag_is_in_citadel_help() {
    let out = Command::new(citadel_bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let known: BTreeSet<&str> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    let mut used: Vec<(String, String)> = unit_command_line()
        .into_iter()
        .filter(|w| w.starts_with("--"))
        .map(|f| (f, format!("{UNIT} + {ENV_FILE}")))
        .collect();
    used.extend(manifest_flags(&manifests()));
    assert!(used.iter().any(|(f, _)| f == "--cluster-enabled"));
    let missing: Vec<String> = used
        .iter()
        .filter(|(f, _)| !known.contains(f.as_str()))
        .map(|(f, file)| format!("{f} (passed by {file})"))
        .collect();
    assert!(
        missing.is_empty(),
        "flags passed by the deployment files but missing from `citadel --help`:\n  {}\n\
         (the --cluster-* flags exist once the cluster branch is merged)",
        missing.join("\n  ")
    );
}
