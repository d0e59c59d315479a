//! `--rate-steps`: open-loop steps with goodput, shed replies (`-OVERLOAD ...`, counted
//! apart from errors) and admitted latency per step, JSON and SVG; multiples of a
//! measured capacity.

mod common;

use common::{f, run_loadgen, u, Server};

#[test]
fn shed_replies_are_counted_apart_from_errors() {
    let citadel = Server::citadel();
    // Citadel's per-key write limit sheds SETs to one key past 50 a second.
    assert_eq!(
        citadel.command(&["CONFIG", "SET", "hotkeys-write-limit", "50"]),
        "+OK"
    );
    let svg = std::env::temp_dir().join(format!("rate-steps-{}.svg", std::process::id()));
    let (status, report, out) = run_loadgen(&[
        "-s",
        &citadel.addr(),
        "-c",
        "2",
        "--keys",
        "1",
        "--ratio",
        "1:1",
        "--rate-steps",
        "400,800",
        "--duration",
        "1s",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps = report["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2);
    for (step, offered) in steps.iter().zip([400.0, 800.0]) {
        assert_eq!(f(step, "offered_ops_per_sec"), offered);
        let r = &step["report"];
        assert_eq!(u(r, "errors"), 0, "{r}");
        let shed = u(step, "shed");
        assert!(shed > 0, "{step}");
        assert_eq!(u(r, "shed"), shed);
        assert_eq!(u(r, "ops.set.shed"), shed, "only writes are shed");
        assert_eq!(u(r, "ops.get.shed"), 0);
        let ok = u(r, "ops.get.ok") + u(r, "ops.set.ok");
        assert_eq!(u(r, "requests"), ok + shed);
        assert!(r["shed_sample"]
            .as_str()
            .is_some_and(|s| s.starts_with("OVERLOAD key ")));
        assert!(f(step, "goodput_ops_per_sec") > 0.0);
        assert!(f(step, "p99_us") > 0.0);
    }
    assert!(stdout.contains("goodput/s"), "{stdout}");
    let chart = std::fs::read_to_string(&svg).expect("svg written");
    let _ = std::fs::remove_file(&svg);
    assert!(
        chart.starts_with("<svg") && chart.contains("goodput"),
        "{chart}"
    );
}

#[test]
fn multiples_of_a_measured_capacity() {
    let redis = Server::redis();
    let (status, report, out) = run_loadgen(&[
        "-s",
        &redis.addr(),
        "-c",
        "2",
        "--rate-steps",
        "0.25x,0.5x",
        "--capacity-duration",
        "500ms",
        "--duration",
        "500ms",
        "--server-pid",
        &redis.child.id().to_string(),
    ]);
    assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report["capacity"]["measured"], true);
    // Both sides' CPU use is reported (the server's from /proc/<pid>/stat).
    for run in std::iter::once(&report["capacity"]).chain(report["steps"].as_array().unwrap()) {
        assert!(f(run, "client_busy") > 0.0, "{run}");
        assert!(f(run, "server_busy") >= 0.0, "{run}");
    }
    let capacity = f(&report, "capacity.ops_per_sec");
    assert!(capacity > 0.0);
    let steps = report["steps"].as_array().expect("steps");
    for (step, m) in steps.iter().zip([0.25, 0.5]) {
        assert_eq!(f(step, "multiple"), m);
        assert!((f(step, "offered_ops_per_sec") - m * capacity).abs() < 1e-6);
        assert_eq!(u(step, "shed"), 0, "redis sheds nothing");
    }
}

#[test]
fn mixed_steps_are_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_citadel-loadgen"))
        .args(["--rate-steps", "1x,2000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("all rates or all multiples"), "{err}");
}
