//! The final table (stdout) and the JSON document (`--json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::driver::{LoadConfig, RunResult};
use crate::protocol::OpKind;
use crate::stats::{ErrorKind, Stats};

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1e3;
        let empty = h.is_empty();
        let q = |q: f64| {
            if empty {
                0.0
            } else {
                us(h.value_at_quantile(q))
            }
        };
        Latency {
            count: h.len(),
            min: if empty { 0.0 } else { us(h.min()) },
            mean: if empty { 0.0 } else { h.mean() / 1e3 },
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: if empty { 0.0 } else { us(h.max()) },
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    /// Shed by the server (`-OVERLOAD ...`).
    pub shed: u64,
    pub ops_per_sec: f64,
    /// Reads, pops and ranges only (`OpKind::counts_hits`): hits / (hits + misses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hits: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub misses: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hit_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub requests: u64,
    pub errors: u64,
}

impl PhaseReport {
    fn of(s: &Stats) -> PhaseReport {
        PhaseReport {
            requests: s.requests(),
            errors: s.total_errors(),
        }
    }
}

/// Everything about a run, as written by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub protocol: &'static str,
    pub servers: Vec<String>,
    pub threads: usize,
    pub connections: usize,
    pub pipeline: usize,
    /// Operations per frame (RPC `--batch`; 1 elsewhere).
    pub batch: usize,
    pub mode: &'static str,
    pub target_rate: Option<f64>,
    pub ratio: String,
    /// `--ops`: the operation mix, `OP:WEIGHT,...` (then `ratio` does not apply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops_mix: Option<String>,
    /// `--ops` with collection operations: `--collection-keys` and `--elements`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection_keys: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elements: Option<u64>,
    /// `ratio` or `ops_mix` in words, for the table's header.
    #[serde(skip)]
    pub mix: String,
    pub keys: u64,
    pub key_dist: String,
    pub value_size: String,
    pub seed: u64,
    /// Measured requests (each ends as a good reply, a shed reply or an error).
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    /// Requests the server shed (replies starting `OVERLOAD `): not errors.
    pub shed: u64,
    pub shed_rate: f64,
    /// The first shed reply's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shed_sample: Option<String>,
    /// Good replies per second (requests neither shed nor failed).
    pub goodput_ops_per_sec: f64,
    pub errors_by_kind: BTreeMap<&'static str, u64>,
    pub error_samples: Vec<String>,
    pub elapsed_s: f64,
    pub ops_per_sec: f64,
    pub hits: u64,
    pub misses: u64,
    pub hit_rate: Option<f64>,
    pub client_cpu_s: f64,
    pub ops_per_client_cpu_s: f64,
    pub ops: BTreeMap<&'static str, OpReport>,
    /// Per operation and `all`, microseconds, from each request's intended send time
    /// (open loop: coordinated-omission-correct; closed loop: its actual send).
    pub latency_us: BTreeMap<&'static str, Latency>,
    /// All good replies, from each request's actual send: the server and the network,
    /// without the load generator's own lag behind its timetable (`send_lag_us`).
    pub latency_from_send_us: Latency,
    /// How late requests were handed to the send path after their intended time: the
    /// load generator's own queueing (open loop; zero in closed loop).
    pub send_lag_us: Latency,
    /// Open loop: how long good replies may have sat unread in their sockets while the
    /// client was busy (a bound per read; zero when the reply woke an idle client).
    pub reply_lag_us: Latency,
    pub warmup: PhaseReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefill: Option<PhaseReport>,
    /// `--mget N`: keys per MGET.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mget: Option<usize>,
    /// `--cluster`: the nodes and the redirects followed in the measured phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    pub nodes: Vec<String>,
    /// `-MOVED` replies followed.
    pub moved: u64,
    /// `-ASK` replies followed.
    pub ask: u64,
}

fn hit_rate(hits: u64, misses: u64) -> Option<f64> {
    (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64)
}

impl Report {
    pub fn new(cfg: &LoadConfig, r: &RunResult) -> Report {
        let w = &cfg.workload;
        let s = &r.stats;
        let secs = r.elapsed.as_secs_f64();
        let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let mut ops = BTreeMap::new();
        let mut latency_us = BTreeMap::new();
        for op in OpKind::ALL {
            let o = &s.ops[op.index()];
            let is_get = op.counts_hits();
            ops.insert(
                op.name(),
                OpReport {
                    requests: o.requests(),
                    ok: o.ok,
                    errors: o.errors,
                    shed: o.shed,
                    ops_per_sec: rate(o.requests()),
                    hits: is_get.then_some(o.hits),
                    misses: is_get.then_some(o.misses),
                    hit_rate: if is_get {
                        hit_rate(o.hits, o.misses)
                    } else {
                        None
                    },
                },
            );
            latency_us.insert(op.name(), Latency::from_histogram(&o.latency));
        }
        latency_us.insert("all", Latency::from_histogram(&s.combined_latency()));
        let requests = s.requests();
        let errors = s.total_errors();
        let shed = s.total_shed();
        let (hits, misses) = [OpKind::Get, OpKind::Mget]
            .iter()
            .map(|op| &s.ops[op.index()])
            .fold((0, 0), |(h, m), o| (h + o.hits, m + o.misses));
        let cpu = r.client_cpu.as_secs_f64();
        let collections = w.ops.as_ref().is_some_and(|m| m.has_collections());
        Report {
            protocol: cfg.protocol.name(),
            servers: cfg.servers.iter().map(|a| a.to_string()).collect(),
            threads: r.threads,
            connections: r.connections,
            pipeline: w.pipeline,
            batch: w.batch,
            mode: if w.rate.is_some() {
                "open-loop"
            } else {
                "closed-loop"
            },
            target_rate: w.rate,
            ratio: format!("{}:{}", w.ratio.set, w.ratio.get),
            ops_mix: w.ops.as_ref().map(|m| m.to_string()),
            collection_keys: collections.then_some(w.collection_keys),
            elements: collections.then_some(w.elements),
            mix: w.mix_summary(),
            keys: w.keys,
            key_dist: w.key_dist.to_string(),
            value_size: if w.value_size.min == w.value_size.max {
                w.value_size.min.to_string()
            } else {
                format!("{}-{}", w.value_size.min, w.value_size.max)
            },
            seed: w.seed,
            requests,
            errors,
            error_rate: error_rate(errors, requests),
            shed,
            shed_rate: error_rate(shed, requests),
            shed_sample: s.shed_sample.clone(),
            goodput_ops_per_sec: rate(s.ops.iter().map(|o| o.ok).sum()),
            errors_by_kind: ErrorKind::ALL
                .iter()
                .map(|k| (k.name(), s.errors[*k as usize]))
                .filter(|(_, n)| *n > 0)
                .collect(),
            error_samples: s.error_samples.clone(),
            elapsed_s: secs,
            ops_per_sec: rate(requests),
            hits,
            misses,
            hit_rate: hit_rate(hits, misses),
            client_cpu_s: cpu,
            ops_per_client_cpu_s: if cpu > 0.0 {
                requests as f64 / cpu
            } else {
                0.0
            },
            ops,
            latency_us,
            latency_from_send_us: Latency::from_histogram(&s.from_send),
            send_lag_us: Latency::from_histogram(&s.send_lag),
            reply_lag_us: Latency::from_histogram(&s.reply_lag),
            warmup: PhaseReport::of(&r.warmup),
            prefill: r.prefill.as_ref().map(PhaseReport::of),
            mget: w.mget,
            cluster: cfg.cluster.map(|_| ClusterReport {
                nodes: r.cluster_nodes.clone(),
                moved: s.moved,
                ask: s.ask,
            }),
        }
    }

    /// The human-readable summary.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{} {} | {} threads x {} conns | pipeline {}{} | {} | {} | {} keys {} | value {} B",
            self.protocol,
            self.servers.join(","),
            self.threads,
            self.connections / self.threads.max(1),
            self.pipeline,
            if self.batch > 1 {
                format!(" batch {}", self.batch)
            } else {
                String::new()
            },
            self.mode,
            self.mix,
            self.keys,
            self.key_dist,
            self.value_size,
        );
        let _ = writeln!(
            out,
            "{:<10} {:>12} {:>12} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "op",
            "requests",
            "ops/s",
            "hit rate",
            "p50 us",
            "p90 us",
            "p99 us",
            "p99.9 us",
            "max us",
            "errors"
        );
        let rows = OpKind::ALL
            .iter()
            .map(|op| (op.name(), &self.ops[op.name()]));
        for (name, o) in rows {
            if o.requests == 0 {
                continue;
            }
            let l = &self.latency_us[name];
            let hr = o
                .hit_rate
                .map_or("-".to_string(), |h| format!("{:.1}%", h * 100.0));
            let _ = writeln!(
                out,
                "{:<10} {:>12} {:>12.0} {:>9} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>8}",
                name, o.requests, o.ops_per_sec, hr, l.p50, l.p90, l.p99, l.p999, l.max, o.errors
            );
        }
        let l = &self.latency_us["all"];
        let hr = self
            .hit_rate
            .map_or("-".to_string(), |h| format!("{:.1}%", h * 100.0));
        let _ = writeln!(
            out,
            "{:<10} {:>12} {:>12.0} {:>9} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>8}",
            "all",
            self.requests,
            self.ops_per_sec,
            hr,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            self.errors
        );
        if self.target_rate.is_some() {
            let (f, lag, unread) = (
                &self.latency_from_send_us,
                &self.send_lag_us,
                &self.reply_lag_us,
            );
            let _ = writeln!(
                out,
                "from actual send: p50 {:.1} us p99 {:.1} us | send lag behind the timetable: p50 {:.1} us p99 {:.1} us max {:.1} us | replies unread up to: p50 {:.1} us p99 {:.1} us",
                f.p50, f.p99, lag.p50, lag.p99, lag.max, unread.p50, unread.p99
            );
        }
        let _ = writeln!(
            out,
            "elapsed {:.3} s | client CPU {:.3} s ({:.0} ops per client CPU-second)",
            self.elapsed_s, self.client_cpu_s, self.ops_per_client_cpu_s
        );
        if self.errors > 0 {
            let kinds: Vec<String> = self
                .errors_by_kind
                .iter()
                .map(|(k, n)| format!("{k}={n}"))
                .collect();
            let _ = writeln!(
                out,
                "ERRORS {} ({:.4}%): {}",
                self.errors,
                self.error_rate * 100.0,
                kinds.join(" ")
            );
            for s in &self.error_samples {
                let _ = writeln!(out, "  e.g. {s}");
            }
        }
        if self.shed > 0 {
            let _ = writeln!(
                out,
                "SHED {} ({:.2}%) by the server | goodput {:.0} ops/s{}",
                self.shed,
                self.shed_rate * 100.0,
                self.goodput_ops_per_sec,
                self.shed_sample
                    .as_ref()
                    .map_or(String::new(), |s| format!(" | e.g. {s}")),
            );
        }
        if let Some(c) = &self.cluster {
            let _ = writeln!(
                out,
                "cluster: {} nodes | redirects followed: {} MOVED, {} ASK",
                c.nodes.len(),
                c.moved,
                c.ask
            );
        }
        if self.warmup.errors > 0 {
            let _ = writeln!(out, "warm-up errors: {}", self.warmup.errors);
        }
        if let Some(p) = &self.prefill {
            let _ = writeln!(out, "prefill: {} requests, {} errors", p.requests, p.errors);
        }
        out
    }
}

/// errors / requests (errors not tied to a request, like failed connects, count too).
pub fn error_rate(errors: u64, requests: u64) -> f64 {
    if errors == 0 {
        0.0
    } else {
        errors as f64 / requests.max(1) as f64
    }
}
