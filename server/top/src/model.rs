//! What the screen shows, computed from two snapshots of the region (rates
//! are their differences over the time between them): plain data, so it
//! is tested without a terminal.

use citadel_telemetry::layout::{bucket_bound_nanos, LATENCY_BUCKETS};
use citadel_telemetry::{quantile_of, CommandTotals, Layer, Snapshot, VersionTotals};

#[derive(Debug, Default)]
pub struct Frame {
    pub title: String,
    pub cores: Vec<CoreRow>,
    /// (label, value) lines: ops/s, hit rate, memory, clients, keys ...
    pub summary: Vec<(String, String)>,
    /// The busiest commands, by calls per second.
    pub commands: Vec<CommandRow>,
    /// Per layer: (layer, shed per second, shed in all).
    pub shed: Vec<(&'static str, f64, u64)>,
    pub hot_keys: Vec<(String, f64)>,
    /// Per plugin and version, from the region's plugin table.
    pub plugins: Vec<PluginRow>,
    /// Per pipeline: (name, its INFO fields).
    pub pipelines: Vec<(String, String)>,
}

#[derive(Debug, PartialEq)]
pub struct PluginRow {
    pub plugin: String,
    pub version: String,
    pub per_sec: f64,
    pub calls: u64,
    pub errors: u64,
    pub timeouts: u64,
    /// Upper bound of the bucket holding the interval's 99th percentile.
    pub p99_us: Option<f64>,
    /// Calls in flight now (the version's queue).
    pub queue: u64,
    /// The plugin's calls refused at once, in all (on its first row).
    pub refused: u64,
}

#[derive(Debug, PartialEq)]
pub struct CoreRow {
    pub core: usize,
    pub ops_per_sec: f64,
    /// Share of the interval spent running commands.
    pub busy: f64,
    pub queue_delay_ms: f64,
}

#[derive(Debug, PartialEq)]
pub struct CommandRow {
    pub name: String,
    pub per_sec: f64,
    pub calls: u64,
    pub avg_us: f64,
    /// Upper bound of the bucket holding the 99th percentile (interval).
    pub p99_us: Option<f64>,
}

const TOP_COMMANDS: usize = 12;

fn rate(now: u64, before: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        return 0.0;
    }
    now.saturating_sub(before) as f64 / secs
}

fn info_u64(s: &Snapshot, key: &str) -> u64 {
    s.info_field(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The 99th percentile's bucket bound (µs) of `buckets` (None: no calls,
/// or beyond the last finite bucket).
fn p99_us(buckets: &[u64; LATENCY_BUCKETS]) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    let want = (total * 99).div_ceil(100);
    let mut seen = 0;
    for (b, n) in buckets.iter().enumerate() {
        seen += n;
        if total > 0 && seen >= want {
            return bucket_bound_nanos(b).map(|ns| ns as f64 / 1000.0);
        }
    }
    None
}

fn command_row(cur: &CommandTotals, before: Option<&CommandTotals>, secs: f64) -> CommandRow {
    let zero = CommandTotals::default();
    let b = before.unwrap_or(&zero);
    let calls = cur.calls.saturating_sub(b.calls);
    let nanos = cur.nanos.saturating_sub(b.nanos);
    let mut buckets = cur.buckets;
    for (n, old) in buckets.iter_mut().zip(b.buckets) {
        *n = n.saturating_sub(old);
    }
    CommandRow {
        name: cur.name.clone(),
        per_sec: rate(cur.calls, b.calls, secs),
        calls: cur.calls,
        avg_us: if calls == 0 {
            0.0
        } else {
            nanos as f64 / calls as f64 / 1000.0
        },
        p99_us: p99_us(&buckets),
    }
}

/// The frame for `cur`, with rates since `before` (`secs` earlier; the
/// first frame compares with nothing and shows totals, rates 0).
pub fn frame(before: Option<&Snapshot>, cur: &Snapshot, secs: f64, now_ms: u64) -> Frame {
    let base = before.cloned().unwrap_or_else(|| cur.clone());
    let secs = if before.is_some() { secs } else { 0.0 };
    let age_s = now_ms.saturating_sub(cur.heartbeat_ms) as f64 / 1000.0;
    let up_s = now_ms.saturating_sub(cur.started_ms) / 1000;
    let title = format!(
        " citadel pid {} · up {}m{:02}s · updated {age_s:.1}s ago · restarts kept {} ",
        cur.writer_pid,
        up_s / 60,
        up_s % 60,
        cur.reopens
    );
    let cores = cur
        .cores
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let old = base.cores.get(i).cloned().unwrap_or_default();
            CoreRow {
                core: i,
                ops_per_sec: rate(c.commands, old.commands, secs),
                busy: rate(c.nanos, old.nanos, secs) / 1e9,
                queue_delay_ms: c.queue_delay_nanos as f64 / 1e6,
            }
        })
        .collect::<Vec<_>>();
    let mut commands: Vec<CommandRow> = cur
        .commands
        .iter()
        .map(|c| command_row(c, base.commands.iter().find(|b| b.name == c.name), secs))
        .collect();
    commands.sort_by(|a, b| b.per_sec.total_cmp(&a.per_sec).then(b.calls.cmp(&a.calls)));
    commands.truncate(TOP_COMMANDS);
    let shed = Layer::ALL
        .iter()
        .map(|&layer| {
            let total = |s: &Snapshot| -> u64 {
                s.shed
                    .iter()
                    .filter(|c| c.layer == layer)
                    .map(|c| c.count)
                    .sum()
            };
            (
                layer.as_str(),
                rate(total(cur), total(&base), secs),
                total(cur),
            )
        })
        .collect();
    Frame {
        title,
        summary: summary(&base, cur, secs, &cores),
        cores,
        commands,
        shed,
        hot_keys: cur
            .hot_keys
            .iter()
            .map(|k| (String::from_utf8_lossy(&k.key).into_owned(), k.rate))
            .collect(),
        plugins: plugin_rows(&base, cur, secs),
        pipelines: pipelines(cur),
    }
}

/// One row per plugin version, with rates and p99 since `base`.
fn plugin_rows(base: &Snapshot, cur: &Snapshot, secs: f64) -> Vec<PluginRow> {
    let mut rows = Vec::new();
    for p in &cur.plugins {
        let old = base.plugins.iter().find(|b| b.name == p.name);
        for (i, v) in p.versions.iter().enumerate() {
            let zero = VersionTotals::default();
            let b = old
                .and_then(|o| o.versions.iter().find(|b| b.name == v.name))
                .unwrap_or(&zero);
            let mut buckets = v.buckets;
            for (n, old) in buckets.iter_mut().zip(b.buckets) {
                *n = n.saturating_sub(old);
            }
            // The first frame (no interval): the p99 of every call so far.
            if buckets.iter().all(|&n| n == 0) && secs == 0.0 {
                buckets = v.buckets;
            }
            rows.push(PluginRow {
                plugin: p.name.clone(),
                version: v.name.clone(),
                per_sec: rate(v.calls, b.calls, secs),
                calls: v.calls,
                errors: v.errors,
                timeouts: v.timeouts,
                p99_us: quantile_of(&buckets, 0.99)
                    .filter(|&ns| ns != u64::MAX)
                    .map(|ns| ns as f64 / 1000.0),
                queue: v.in_flight,
                refused: if i == 0 { p.refused } else { 0 },
            });
        }
    }
    rows
}

fn summary(base: &Snapshot, cur: &Snapshot, secs: f64, cores: &[CoreRow]) -> Vec<(String, String)> {
    let delta = |key: &str| info_u64(cur, key).saturating_sub(info_u64(base, key));
    let (mut hits, mut misses) = (delta("keyspace_hits"), delta("keyspace_misses"));
    if hits + misses == 0 {
        (hits, misses) = (
            info_u64(cur, "keyspace_hits"),
            info_u64(cur, "keyspace_misses"),
        );
    }
    let hit_rate = if hits + misses == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", 100.0 * hits as f64 / (hits + misses) as f64)
    };
    let ops: f64 = cores.iter().map(|c| c.ops_per_sec).sum();
    let mib = |key: &str| format!("{:.1} MiB", info_u64(cur, key) as f64 / (1 << 20) as f64);
    vec![
        ("ops/s".into(), format!("{ops:.0}")),
        ("hit rate".into(), hit_rate),
        ("used memory".into(), mib("used_memory")),
        ("maxmemory".into(), mib("maxmemory")),
        ("keys".into(), info_u64(cur, "cache_keys").to_string()),
        (
            "clients".into(),
            info_u64(cur, "connected_clients").to_string(),
        ),
        (
            "evictions/s".into(),
            format!(
                "{:.0}",
                rate(
                    info_u64(cur, "evicted_keys"),
                    info_u64(base, "evicted_keys"),
                    secs
                )
            ),
        ),
        ("shed in all".into(), cur.total_shed().to_string()),
    ]
}

/// INFO's `pipeline_<name>:` lines (plugins have their own table).
fn pipelines(cur: &Snapshot) -> Vec<(String, String)> {
    cur.info
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim_end().split_once(':')?;
            let name = k.strip_prefix("pipeline_")?;
            v.contains('=')
                .then(|| (name.to_string(), v.replace(',', " ")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use citadel_telemetry::{CoreTotals, HotKey, PluginTotals, ShedCount};

    fn snapshot(get_calls: u64, hits: u64, shed: u64) -> Snapshot {
        let mut buckets = [0; LATENCY_BUCKETS];
        buckets[3] = get_calls;
        let mut plugin_buckets = [0; citadel_telemetry::layout::PLUGIN_BUCKETS];
        plugin_buckets[5] = get_calls;
        Snapshot {
            writer_pid: 7,
            cores: vec![CoreTotals {
                commands: get_calls,
                nanos: get_calls * 5000,
                ..Default::default()
            }],
            commands: vec![CommandTotals {
                name: "get".into(),
                calls: get_calls,
                nanos: get_calls * 5000,
                failed: 0,
                buckets,
            }],
            shed: vec![ShedCount {
                layer: Layer::Core,
                reason: "queueing delay".into(),
                priority: 2,
                priority_name: String::new(),
                count: shed,
            }],
            hot_keys: vec![HotKey {
                key: b"user:1".to_vec(),
                rate: 10.0,
            }],
            info: format!(
                "keyspace_hits:{hits}\r\nkeyspace_misses:0\r\npipeline_ocr:calls=3,queue=1\r\n"
            ),
            plugins: vec![PluginTotals {
                name: "echo".into(),
                refused: shed,
                versions: vec![VersionTotals {
                    name: "v1".into(),
                    calls: get_calls,
                    errors: 1,
                    in_flight: 2,
                    buckets: plugin_buckets,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn rates_are_differences_over_the_interval() {
        let (a, b) = (snapshot(100, 10, 4), snapshot(300, 30, 10));
        let f = frame(Some(&a), &b, 2.0, 0);
        assert_eq!(f.cores[0].ops_per_sec, 100.0);
        assert_eq!(f.commands[0].per_sec, 100.0);
        assert_eq!(f.commands[0].avg_us, 5.0);
        assert_eq!(f.commands[0].p99_us, Some(8.192));
        assert_eq!(f.shed[1], ("core", 3.0, 10));
        assert!(f.summary.contains(&("hit rate".into(), "100.0%".into())));
        assert_eq!(f.hot_keys, vec![("user:1".to_string(), 10.0)]);
        assert_eq!(
            f.pipelines,
            vec![("ocr".to_string(), "calls=3 queue=1".to_string())]
        );
        let echo = &f.plugins[0];
        assert_eq!(
            (echo.plugin.as_str(), echo.version.as_str()),
            ("echo", "v1")
        );
        assert_eq!((echo.per_sec, echo.calls, echo.errors), (100.0, 300, 1));
        assert_eq!((echo.queue, echo.refused), (2, 10));
        assert_eq!(echo.p99_us, Some(32.768));
    }

    #[test]
    fn the_first_frame_shows_totals_without_rates() {
        let f = frame(None, &snapshot(5, 0, 0), 1.0, 0);
        assert_eq!(f.commands[0].calls, 5);
        assert_eq!(f.commands[0].per_sec, 0.0);
        assert!(f.summary.contains(&("hit rate".into(), "-".into())));
    }
}
