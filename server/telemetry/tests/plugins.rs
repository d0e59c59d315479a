//! The plugin section end to end: per plugin and version counters a
//! reader sees, p50/p99 from the buckets, the exposition (checked by
//! `promtool` when it is installed), a restart that keeps the counters by
//! name, a full table, and an entry a crash left half-named.

use std::path::Path;

use citadel_telemetry::layout::PluginWord;
use citadel_telemetry::*;

const GEOMETRY: Geometry = Geometry {
    cores: 1,
    commands: 4,
    hot_keys: 2,
    info_bytes: 64,
};

fn write_word(path: &Path, word: usize, value: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(word as u64 * 8)).unwrap();
    f.write_all(&value.to_le_bytes()).unwrap();
}

fn version<'a>(s: &'a Snapshot, plugin: &str, version: &str) -> &'a VersionTotals {
    let p = s.plugins.iter().find(|p| p.name == plugin).unwrap();
    p.versions.iter().find(|v| v.name == version).unwrap()
}

#[test]
fn a_reader_sees_each_version_and_its_quantiles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.stats");
    let (region, _) = Region::open(&path, GEOMETRY).unwrap();
    let many: Vec<&str> = vec!["a", "b", "c", "d", "e", "f"];
    let entries = region.plugins(&[("echo", vec!["v1", "v2"]), ("wide", many)]);
    let echo = entries[0].as_ref().unwrap();
    for i in 0..100u64 {
        echo.enter(0);
        echo.ended(0, 2_000 + i, CallEnd::Ok);
    }
    echo.enter(0);
    echo.ended(0, 5_000_000, CallEnd::Error);
    echo.enter(1);
    echo.ended(1, 0, CallEnd::Timeout);
    echo.enter(1);
    echo.refused();
    let wide = entries[1].as_ref().unwrap();
    wide.enter(5); // past PLUGIN_VERSIONS: not recorded
    wide.ended(5, 1, CallEnd::Ok);

    let s = Reader::open(&path).unwrap().snapshot();
    assert_eq!(s.plugins_unlisted, 2);
    let v1 = version(&s, "echo", "v1");
    assert_eq!(
        (v1.calls, v1.errors, v1.timeouts, v1.in_flight),
        (101, 1, 0, 0)
    );
    // 2-2.1 µs is bucket 1 (under 2048 ns) or 2 (under 4096 ns).
    assert_eq!(v1.quantile_nanos(0.5), Some(4096));
    assert_eq!(v1.quantile_nanos(0.999), Some(1024 << 13));
    let v2 = version(&s, "echo", "v2");
    assert_eq!((v2.calls, v2.timeouts, v2.in_flight), (0, 1, 1));
    assert_eq!(v2.quantile_nanos(0.99), None);
    assert_eq!(s.plugins[0].refused, 1);
    let w = &s
        .plugins
        .iter()
        .find(|p| p.name == "wide")
        .unwrap()
        .versions;
    assert_eq!(w.len(), PLUGIN_VERSIONS);
    assert!(w.iter().all(|v| v.calls == 0));

    let text = exposition::render(&s);
    for line in [
        "citadel_plugin_calls_total{plugin=\"echo\",version=\"v1\"} 101\n",
        "citadel_plugin_errors_total{plugin=\"echo\",version=\"v1\"} 1\n",
        "citadel_plugin_timeouts_total{plugin=\"echo\",version=\"v2\"} 1\n",
        "citadel_plugin_in_flight{plugin=\"echo\",version=\"v2\"} 1\n",
        "citadel_plugin_refused_total{plugin=\"echo\"} 1\n",
        "citadel_plugin_call_duration_seconds_bucket{plugin=\"echo\",version=\"v1\",le=\"+Inf\"} 101\n",
        "citadel_plugin_call_duration_seconds_count{plugin=\"echo\",version=\"v1\"} 101\n",
        "citadel_plugin_versions_unlisted 2\n",
    ] {
        assert!(text.contains(line), "{line} missing in\n{text}");
    }
    promtool_accepts(&text);
}

/// `promtool check metrics` passes `text` (skipped where it is missing).
fn promtool_accepts(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed: exposition not checked by it");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_restart_keeps_each_versions_counters_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.stats");
    {
        let (region, _) = Region::open(&path, GEOMETRY).unwrap();
        let e = region.plugins(&[("gone", vec!["default"]), ("echo", vec!["v1", "v2"])]);
        let echo = e[1].as_ref().unwrap();
        echo.enter(0);
        echo.ended(0, 10_000, CallEnd::Ok);
        echo.enter(1);
        echo.enter(1); // in flight when the server stops
        echo.ended(1, 10_000, CallEnd::Error);
        echo.refused();
    }
    let (region, opened) = Region::open(&path, GEOMETRY).unwrap();
    assert_eq!(opened, Opened::Reused);
    // Versions listed the other way round, v3 new, v1 gone.
    let e = region.plugins(&[("echo", vec!["v3", "v2"])]);
    // The call in flight when the server stopped ended with it.
    assert_eq!(version(&region.snapshot(), "echo", "v2").in_flight, 0);
    let echo = e[0].as_ref().unwrap();
    echo.enter(1);
    echo.ended(1, 10_000, CallEnd::Ok);
    let s = region.snapshot();
    let echo = s.plugins.iter().find(|p| p.name == "echo").unwrap();
    assert_eq!(echo.refused, 1);
    let names: Vec<&str> = echo.versions.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names.len(), 2);
    let v2 = version(&s, "echo", "v2");
    assert_eq!((v2.calls, v2.errors), (2, 1));
    assert_eq!(v2.in_flight, 0);
    let v3 = version(&s, "echo", "v3");
    assert_eq!((v3.calls, v3.in_flight), (0, 0));
}

#[test]
fn a_full_table_takes_a_gone_plugins_entry_then_leaves_the_rest_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.stats");
    let (region, _) = Region::open(&path, GEOMETRY).unwrap();
    let names: Vec<String> = (0..PLUGINS).map(|i| format!("p{i}")).collect();
    let all: Vec<(&str, Vec<&str>)> = names.iter().map(|n| (n.as_str(), vec!["v"])).collect();
    let e = region.plugins(&all);
    assert!(e.iter().all(Option::is_some));
    e[0].as_ref().unwrap().refused();
    // A server with p1.. and two new plugins: one takes p0's entry.
    let mut next = all[1..].to_vec();
    next.push(("new", vec!["v"]));
    next.push(("newer", vec!["v", "w"]));
    let e = region.plugins(&next);
    assert!(e[PLUGINS - 1].is_some());
    assert!(e[PLUGINS].is_none());
    let s = region.snapshot();
    assert_eq!(s.plugins_unlisted, 2);
    let new = s.plugins.iter().find(|p| p.name == "new").unwrap();
    assert_eq!(new.refused, 0, "a taken entry starts from zero");
    assert!(s.plugins.iter().all(|p| p.name != "p0"));
}

#[test]
fn an_entry_left_half_named_is_skipped_then_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.stats");
    {
        let (region, _) = Region::open(&path, GEOMETRY).unwrap();
        let e = region.plugins(&[("echo", vec!["default"])]);
        e[0].as_ref().unwrap().refused();
    }
    // A crash between names and checksum: the checksum no longer matches.
    let at = GEOMETRY.offsets().plugins;
    write_word(&path, at + PluginWord::Checksum as usize, 12345);
    assert!(Reader::open(&path).unwrap().snapshot().plugins.is_empty());
    let (region, _) = Region::open(&path, GEOMETRY).unwrap();
    let e = region.plugins(&[("echo", vec!["default"])]);
    assert!(e[0].is_some());
    let s = region.snapshot();
    assert_eq!(s.plugins.len(), 1);
    assert_eq!(s.plugins[0].refused, 0);
    assert_eq!(s.plugins[0].versions[0].name, "default");
}
