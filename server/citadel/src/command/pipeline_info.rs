//! PIPELINE LIST | INFO | HELP and the INFO `pipelines` section: per
//! pipeline its calls, cache hits, latency; per stage what its input rings
//! record in shared memory (records handled, queue depth, how often the
//! stage before it found the ring full, how often the stage waited on an
//! empty one, time spent per record with its p50/p99 (a histogram of
//! doubling buckets, so within a factor of 2), records per second between
//! two looks at least a second apart) and, from that, which stage is the bottleneck
//! and how its cores might be split.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use citadel_proto::RingCounters;
use citadel_supervisor::{Hub, PipelineShared};

use super::args::Args;
use super::context::{reply_lines, Ctx};
use super::error::{CmdError, CmdResult};
use crate::state::ServerState;

/// One stage, as its input rings report it.
struct Stage {
    name: String,
    instances: usize,
    cores: String,
    counters: RingCounters,
    depth: u64,
}

impl Stage {
    /// Mean handler time per record, in microseconds.
    fn us_per_record(&self) -> f64 {
        if self.counters.delivered == 0 {
            return 0.0;
        }
        self.counters.busy_ns as f64 / self.counters.delivered as f64 / 1000.0
    }
}

fn stages(hub: &Hub, p: &PipelineShared) -> Vec<Stage> {
    p.config
        .stages
        .iter()
        .map(|&s| {
            let plugin = &hub.plugins[s];
            let rings = &hub.input_rings[s];
            let mut counters = RingCounters::default();
            for r in rings {
                counters.add(&r.counters());
            }
            Stage {
                name: plugin.config.name.clone(),
                instances: plugin.config.instances,
                cores: plugin.cores_text(),
                counters,
                depth: rings.iter().map(|r| r.depth()).sum(),
            }
        })
        .collect()
}

/// The stage that limits throughput (most handler time per instance) and
/// a split of the stages' instances in proportion to their work.
fn advice(stages: &[Stage]) -> (String, String) {
    let busy: Vec<f64> = stages.iter().map(|s| s.counters.busy_ns as f64).collect();
    let total: f64 = busy.iter().sum();
    if total == 0.0 {
        return ("none yet".into(), "no work measured yet".into());
    }
    let per_instance = |i: usize| busy[i] / stages[i].instances as f64;
    let bottleneck = (0..stages.len())
        .max_by(|&a, &b| per_instance(a).total_cmp(&per_instance(b)))
        .map_or(String::new(), |i| stages[i].name.clone());
    let cores: usize = stages.iter().map(|s| s.instances).sum();
    let split: Vec<String> = stages
        .iter()
        .zip(&busy)
        .map(|(s, b)| {
            let n = ((b / total) * cores as f64).round().max(1.0) as usize;
            format!("{}={n}", s.name)
        })
        .collect();
    (bottleneck, split.join(" "))
}

/// Every field of one pipeline, in order.
fn fields(hub: &Hub, p: &PipelineShared) -> Vec<(String, String)> {
    let s = &p.stats;
    let stages = stages(hub, p);
    let (bottleneck, split) = advice(&stages);
    let rates: Vec<f64> = {
        let mut r = p.stage_rates.lock().unwrap_or_else(|e| e.into_inner());
        r.iter_mut()
            .zip(&stages)
            .map(|(rate, st)| rate.observe(st.counters.delivered))
            .collect()
    };
    let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
    let mut f: Vec<(String, String)> = [
        ("name", p.config.name.clone()),
        ("stages", names.join(",")),
        ("calls", s.processed.load(Relaxed).to_string()),
        ("in_flight", s.in_flight.load(Relaxed).to_string()),
        ("cache_hits", p.cache_hits.load(Relaxed).to_string()),
        ("joined", p.joined.load(Relaxed).to_string()),
        ("frames", p.frames.load(Relaxed).to_string()),
        ("errors", s.errors.load(Relaxed).to_string()),
        ("poisoned", s.poisoned.load(Relaxed).to_string()),
        ("timeouts", s.timeouts.load(Relaxed).to_string()),
        ("rejected", s.rejected.load(Relaxed).to_string()),
        ("p50_us", s.latency.quantile(0.50).to_string()),
        ("p99_us", s.latency.quantile(0.99).to_string()),
        ("timeout_ms", p.config.timeout.as_millis().to_string()),
        ("result_ttl_ms", p.config.result_ttl.as_millis().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (st, rate) in stages.iter().zip(rates) {
        let c = &st.counters;
        f.push((
            format!("stage_{}", st.name),
            format!(
                "instances={} cores={} records={} records_per_sec={:.1} queue_bytes={} ring_full={} ring_empty={} us_per_record={:.1} p50_us={} p99_us={}",
                st.instances,
                st.cores,
                c.delivered,
                rate,
                st.depth,
                c.full,
                c.empty,
                st.us_per_record(),
                c.latency_quantile_us(0.50),
                c.latency_quantile_us(0.99),
            ),
        ));
    }
    f.push(("bottleneck".into(), bottleneck));
    f.push(("suggested_instances".into(), split));
    f
}

fn hub<'a>(ctx: &'a Ctx<'_>) -> Option<&'a std::sync::Arc<Hub>> {
    ctx.state.plugins.hub()
}

pub fn list(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let lines: Vec<String> = hub(ctx)
        .map(|h| {
            h.pipelines
                .iter()
                .map(|p| {
                    fields(h, p)
                        .into_iter()
                        .take(11)
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        })
        .unwrap_or_default();
    ctx.out.array(lines.len());
    for l in &lines {
        ctx.out.bulk(l.as_bytes());
    }
    Ok(())
}

pub fn info(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let name = args.get(2);
    let fields = hub(ctx)
        .and_then(|h| h.find_pipeline(name).map(|i| fields(h, &h.pipelines[i])))
        .ok_or_else(|| CmdError::quoting("ERR no such pipeline '", name, "'"))?;
    ctx.out.map(fields.len());
    for (k, v) in &fields {
        ctx.out.bulk(k.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
    Ok(())
}

pub fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    reply_lines(
        &mut ctx.out,
        &[
            "PIPELINE <subcommand> [<arg> ...]. Subcommands are:",
            "CALL <name> KEY <key>|DATA <bytes>|FILE <path> [EVERY <n>|FPS <f>|KEYFRAMES]",
            "     [WIDTH <w>] [HEIGHT <h>] [FORMAT rgb24|bgr24|gray] [MAX-FRAMES <n>] [NOCACHE]",
            "    Run the pipeline; returns its JSON result. Results are cached by input content.",
            "LIST",
            "    One line per pipeline: stages, calls, cache hits, frames, errors.",
            "INFO <name>",
            "    Every field, per stage ring figures, the bottleneck and a suggested split.",
            "HELP",
            "    Print this help.",
        ],
    );
    Ok(())
}

/// INFO pipelines: one line per pipeline.
pub fn info_section(out: &mut String, state: &ServerState) {
    let Some(hub) = state.plugins.hub() else {
        let _ = write!(out, "pipelines:0\r\n");
        return;
    };
    let _ = write!(out, "pipelines:{}\r\n", hub.pipelines.len());
    let _ = write!(
        out,
        "pipeline_calls_in_progress:{}\r\n",
        state.pipeline_flights.in_progress()
    );
    for p in &hub.pipelines {
        let values: Vec<String> = fields(hub, p)
            .into_iter()
            .skip(1)
            .map(|(k, v)| format!("{k}={}", v.replace(',', ";").replace(' ', "|")))
            .collect();
        let _ = write!(out, "pipeline_{}:{}\r\n", p.config.name, values.join(","));
    }
}
