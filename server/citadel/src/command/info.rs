//! INFO [section ...]: Redis's sections with Citadel's numbers, plus a
//! `citadel` section with per-thread load and cache internals.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::args::Args;
use super::connection::REDIS_VERSION;
use super::context::Ctx;
use super::error::CmdResult;
use crate::state::ServerState;
use citadel_net::LoopStats;
use citadel_settings::server as setting;

type Section = fn(&mut String, &Snapshot<'_>);

/// Sections in output order: (name, in the default set, writer).
const SECTIONS: &[(&str, bool, Section)] = &[
    ("server", true, server),
    ("clients", true, clients),
    ("memory", true, memory),
    ("persistence", true, persistence),
    ("stats", true, stats),
    ("replication", true, replication),
    ("cpu", true, cpu),
    ("errorstats", true, errorstats),
    ("cluster", true, cluster),
    ("keyspace", true, keyspace),
    ("commandstats", false, commandstats),
    ("latencystats", false, latencystats),
    ("citadel", true, citadel),
    ("overload", true, overload),
    ("plugins", false, plugins),
    ("pipelines", false, pipelines),
    ("readthrough", false, readthrough),
    ("rpc", false, rpc),
    ("hotkeys", false, hotkeys),
];

/// What the sections report, gathered once per INFO call.
struct Snapshot<'a> {
    state: &'a ServerState,
    cache: citadel_cache::CacheStats,
    rates: crate::state::Rates,
    now_ms: u64,
    /// Command statistics, summed over threads only if a section needs them.
    calls: std::cell::OnceCell<crate::introspect::calls::Totals>,
    /// (database, keys, keys with a TTL) per database holding keys, when
    /// the caller had a cache handle to count them (`databases::keyspace`).
    keyspace: Option<Vec<(usize, u64, u64)>>,
}

impl Snapshot<'_> {
    fn calls(&self) -> &crate::introspect::calls::Totals {
        self.calls
            .get_or_init(|| super::stats_info::totals(self.state))
    }
}

pub fn info(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let wanted = |name: &str, default: bool| {
        if args.len() == 1 {
            return default;
        }
        args.from(1).iter().any(|a| {
            a.eq_ignore_ascii_case(name.as_bytes())
                || a.eq_ignore_ascii_case(b"all")
                || a.eq_ignore_ascii_case(b"everything")
                || (default && a.eq_ignore_ascii_case(b"default"))
        })
    };
    let keyspace = wanted("keyspace", true)
        .then(|| super::databases::keyspace(ctx.state, &mut ctx.thread.cache));
    let text = text_with(ctx.state, wanted, keyspace);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// INFO's text of the sections `wanted(name, in_default_set)` picks (INFO
/// and the RPC `stats`).
pub fn text(state: &ServerState, wanted: impl Fn(&str, bool) -> bool) -> String {
    text_with(state, wanted, None)
}

fn text_with(
    state: &ServerState,
    wanted: impl Fn(&str, bool) -> bool,
    keyspace: Option<Vec<(usize, u64, u64)>>,
) -> String {
    let snap = Snapshot {
        state,
        cache: state.cache_stats(),
        rates: state.rates(),
        now_ms: citadel_cache::unix_millis(),
        calls: Default::default(),
        keyspace,
    };
    let mut text = String::with_capacity(4096);
    for (name, default, write) in SECTIONS {
        if wanted(name, *default) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            let mut title = name.to_string();
            title[..1].make_ascii_uppercase();
            let _ = write!(
                text,
                "# {}\r\n",
                if *name == "cpu" { "CPU" } else { &title }
            );
            write(&mut text, &snap);
        }
    }
    text
}

/// Appends `key:value\r\n`.
macro_rules! line {
    ($out:expr, $key:expr, $($fmt:tt)+) => {{
        let _ = write!($out, "{}:", $key);
        let _ = write!($out, $($fmt)+);
        $out.push_str("\r\n");
    }};
}

/// Redis's bytesToHuman.
fn human(n: u64) -> String {
    let units = [
        (1u64 << 50, "P"),
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    match units.iter().find(|(size, _)| n >= *size) {
        Some((size, unit)) => format!("{:.2}{unit}", n as f64 / *size as f64),
        None => format!("{n}B"),
    }
}

fn sum(state: &ServerState, f: fn(&LoopStats) -> &std::sync::atomic::AtomicU64) -> u64 {
    state
        .thread_stats
        .iter()
        .map(|t| &*t.net)
        .map(|t| f(t).load(Ordering::Relaxed))
        .sum()
}

fn server(out: &mut String, s: &Snapshot<'_>) {
    let st = s.state;
    let uptime = st.started.elapsed().as_secs();
    line!(out, "redis_version", "{REDIS_VERSION}");
    line!(out, "redis_git_sha1", "00000000");
    line!(out, "redis_git_dirty", "0");
    line!(out, "redis_mode", "standalone");
    line!(
        out,
        "os",
        "{} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    line!(out, "arch_bits", "{}", usize::BITS);
    line!(out, "multiplexing_api", "io_uring");
    line!(out, "process_id", "{}", std::process::id());
    line!(out, "process_supervised", "no");
    line!(out, "run_id", "{}", st.run_id);
    line!(out, "tcp_port", "{}", st.settings.get(&setting::PORT));
    line!(out, "server_time_usec", "{}", s.now_ms * 1000);
    line!(out, "uptime_in_seconds", "{uptime}");
    line!(out, "uptime_in_days", "{}", uptime / 86400);
    line!(out, "hz", "10");
    line!(out, "configured_hz", "10");
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    line!(out, "executable", "{exe}");
    line!(
        out,
        "config_file",
        "{}",
        st.config_file.as_deref().unwrap_or("")
    );
    line!(out, "io_threads_active", "0");
    line!(out, "citadel_version", "{}", env!("CARGO_PKG_VERSION"));
}

fn clients(out: &mut String, s: &Snapshot<'_>) {
    line!(out, "connected_clients", "{}", s.state.clients.live_len());
    line!(out, "cluster_connections", "0");
    line!(out, "maxclients", "{}", s.state.maxclients());
    // Clients held by CLIENT PAUSE count as blocked, as in Redis.
    let held = s.state.introspect.pause.held();
    line!(out, "blocked_clients", "{}", s.state.blocked.count() + held);
    line!(out, "tracking_clients", "{}", s.state.tracking.clients());
    line!(out, "pubsub_clients", "0");
    line!(out, "clients_in_timeout_table", "0");
    line!(out, "total_blocking_keys", "{}", s.state.blocked.keys());
}

/// Resident set size from /proc (0 where unavailable).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn memory(out: &mut String, s: &Snapshot<'_>) {
    let c = &s.cache;
    line!(out, "used_memory", "{}", c.used_bytes);
    line!(out, "used_memory_human", "{}", human(c.used_bytes));
    let rss = rss_bytes();
    line!(out, "used_memory_rss", "{rss}");
    line!(out, "used_memory_rss_human", "{}", human(rss));
    scripts_memory(out, s);
    // Under a cap (CONFIG SET maxmemory below the file's size), the value
    // set, as Redis shows it; else what the file holds.
    let maxmemory = match c.memory_cap {
        Some(_) => s
            .state
            .settings
            .get(&citadel_settings::server::MAXMEMORY)
            .bytes(),
        None => c.file_bytes,
    };
    line!(out, "maxmemory", "{maxmemory}");
    line!(out, "maxmemory_human", "{}", human(maxmemory));
    line!(
        out,
        "maxmemory_policy",
        "{}",
        s.state
            .settings
            .get(&citadel_settings::server::MAXMEMORY_POLICY)
            .name()
    );
    // Redis's memory outside what eviction counts (AOF and replica
    // buffers): Citadel has neither.
    line!(out, "mem_not_counted_for_evict", "0");
    line!(out, "mem_allocator", "{}", crate::state::mem_allocator());
    // Citadel's lazy free: big collections dropped whose pages are still
    // to delete in the background (Stats' `reclaim_pending_pages` counts
    // the pages).
    line!(
        out,
        "lazyfree_pending_objects",
        "{}",
        c.reclaim_pending_roots
    );
    // Big collections dropped (DEL, UNLINK, FLUSH, overwrite, expiry,
    // eviction) whose pages were then all deleted in the background.
    line!(out, "lazyfreed_objects", "{}", c.lazyfreed_roots);
}

/// Redis's script fields. Scripts and functions share each core's Lua
/// state, so its memory counts as eval's and functions' VM is 0.
fn scripts_memory(out: &mut String, s: &Snapshot<'_>) {
    let store = &s.state.scripts;
    let vm = store.busy.vm_bytes();
    let (functions, libraries, functions_bytes) = {
        let f = store.functions();
        (f.function_count(), f.libraries.len(), f.bytes())
    };
    let eval_bytes = store.script_bytes();
    line!(out, "used_memory_lua", "{vm}");
    line!(out, "used_memory_vm_eval", "{vm}");
    line!(out, "used_memory_lua_human", "{}", human(vm));
    line!(out, "used_memory_scripts_eval", "{eval_bytes}");
    line!(out, "number_of_cached_scripts", "{}", store.script_count());
    line!(out, "number_of_functions", "{functions}");
    line!(out, "number_of_libraries", "{libraries}");
    line!(out, "used_memory_vm_functions", "0");
    line!(out, "used_memory_vm_total", "{vm}");
    line!(out, "used_memory_vm_total_human", "{}", human(vm));
    line!(out, "used_memory_functions", "{functions_bytes}");
    let scripts = eval_bytes + functions_bytes;
    line!(out, "used_memory_scripts", "{scripts}");
    line!(
        out,
        "used_memory_scripts_human",
        "{}",
        human(scripts as u64)
    );
}

fn persistence(out: &mut String, s: &Snapshot<'_>) {
    // The cache lives in a mapped file that survives restarts; a save makes
    // it durable (`crate::saves`). There are no RDB/AOF child processes.
    line!(out, "loading", "0");
    line!(out, "async_loading", "0");
    let mut fields = Vec::with_capacity(16);
    s.state
        .saves
        .info(super::save::writes(s.state), &mut fields);
    for (name, value) in fields {
        line!(out, name, "{value}");
    }
}

fn stats(out: &mut String, s: &Snapshot<'_>) {
    let st = s.state;
    line!(
        out,
        "total_connections_received",
        "{}",
        sum(st, |t| &t.accepted)
    );
    let rpc_requests: u64 = st
        .thread_stats
        .iter()
        .map(|t| t.rpc.requests.load(Ordering::Relaxed))
        .sum();
    line!(
        out,
        "total_commands_processed",
        "{}",
        super::stats_info::commands_processed(s.calls()) + rpc_requests
    );
    line!(
        out,
        "instantaneous_ops_per_sec",
        "{}",
        s.rates.ops_per_sec.round() as u64
    );
    line!(out, "total_net_input_bytes", "{}", sum(st, |t| &t.bytes_in));
    line!(
        out,
        "total_net_output_bytes",
        "{}",
        sum(st, |t| &t.bytes_out)
    );
    line!(out, "rejected_connections", "{}", sum(st, |t| &t.rejected));
    line!(out, "connection_panics", "{}", sum(st, |t| &t.panics));
    line!(out, "expired_keys", "{}", s.cache.expirations);
    line!(out, "evicted_keys", "{}", s.cache.evictions);
    // Pages of big collections deleted after their root went, and still queued.
    line!(out, "reclaimed_pages", "{}", s.cache.reclaimed_pages);
    line!(out, "reclaim_pending_pages", "{}", s.cache.reclaim_pending);
    // Paged collections read whole (O(N): SMEMBERS, DUMP, SORT ...).
    let whole_reads = &super::collections::value::WHOLE_READS;
    line!(
        out,
        "collection_whole_reads",
        "{}",
        whole_reads.load(Ordering::Relaxed)
    );
    // Multi-key writes too big for the crash journal (atomic to readers only).
    line!(out, "journal_overflows", "{}", s.cache.journal_overflows);
    line!(out, "keyspace_hits", "{}", s.cache.hits);
    line!(out, "keyspace_misses", "{}", s.cache.misses);
    line!(out, "pubsub_channels", "0");
    line!(out, "pubsub_patterns", "0");
    line!(
        out,
        "migrate_cached_sockets",
        "{}",
        s.state.migrator.cached_targets()
    );
    let tracking = &s.state.tracking;
    line!(out, "tracking_total_keys", "{}", tracking.keys());
    line!(out, "tracking_total_items", "{}", tracking.items());
    line!(out, "tracking_total_prefixes", "{}", tracking.prefixes());
    line!(out, "unexpected_error_replies", "0");
    line!(out, "total_error_replies", "{}", s.calls().error_replies);
}

fn errorstats(out: &mut String, s: &Snapshot<'_>) {
    super::stats_info::errorstats(out, s.calls());
}

fn commandstats(out: &mut String, s: &Snapshot<'_>) {
    super::stats_info::commandstats(out, s.calls());
}

fn latencystats(out: &mut String, s: &Snapshot<'_>) {
    super::stats_info::latencystats(out, s.calls());
}

/// The RPC front door: requests by outcome and priority class, and the
/// shared-memory clients attached.
fn rpc(out: &mut String, s: &Snapshot<'_>) {
    let total = |f: fn(&crate::stats::RpcCounters) -> &std::sync::atomic::AtomicU64| -> u64 {
        s.state
            .thread_stats
            .iter()
            .map(|t| f(&t.rpc).load(Ordering::Relaxed))
            .sum()
    };
    line!(out, "rpc_requests", "{}", total(|r| &r.requests));
    line!(out, "rpc_errors", "{}", total(|r| &r.errors));
    line!(
        out,
        "rpc_deadline_refused",
        "{}",
        total(|r| &r.deadline_refused)
    );
    let names = ["default", "low", "normal", "high"];
    for (i, name) in names.iter().enumerate() {
        let n: u64 = s
            .state
            .thread_stats
            .iter()
            .map(|t| t.rpc.by_priority[i].load(Ordering::Relaxed))
            .sum();
        line!(out, format!("rpc_priority_{name}"), "{n}");
    }
    line!(out, "rpc_shm_clients", "{}", total(|r| &r.shm_clients));
}

fn replication(out: &mut String, s: &Snapshot<'_>) {
    line!(out, "role", "master");
    line!(out, "connected_slaves", "0");
    line!(out, "master_failover_state", "no-failover");
    line!(out, "master_replid", "{}", s.state.run_id);
    line!(out, "master_repl_offset", "0");
}

/// (user, system) CPU seconds of the process from /proc/self/stat.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 12th and 13th of them, in clock ticks (100 Hz on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let mut f = rest.split_whitespace().skip(11);
    let mut next = || f.next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    let user = next();
    (user, next())
}

fn cpu(out: &mut String, _: &Snapshot<'_>) {
    let (user, sys) = cpu_seconds();
    line!(out, "used_cpu_sys", "{sys:.6}");
    line!(out, "used_cpu_user", "{user:.6}");
}

fn cluster(out: &mut String, s: &Snapshot<'_>) {
    let enabled = s.state.cluster.get().is_some();
    line!(out, "cluster_enabled", "{}", u8::from(enabled));
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    if let Some(node) = s.state.cluster.get() {
        let h = &node.handoff;
        line!(out, "cluster_handoff_hits", "{}", load(&h.hits));
        line!(out, "cluster_handoff_misses", "{}", load(&h.misses));
        line!(out, "cluster_handoff_errors", "{}", load(&h.errors));
    }
    if let Some(forwarder) = s.state.forwarder.get() {
        // Broadcast PUBLISH (`command/cluster_pubsub.rs`): copies peers
        // took, and copies dropped (a peer down, slow, or refusing).
        let sent = forwarder.unanswered();
        line!(out, "cluster_pubsub_delivered", "{}", load(&sent.delivered));
        line!(out, "cluster_pubsub_dropped", "{}", load(&sent.dropped));
    }
}

fn keyspace(out: &mut String, s: &Snapshot<'_>) {
    // Without a handle to count each database (the RPC), all keys are
    // shown as namespace 0's database's.
    let all = [(
        super::databases::db_of_namespace(&s.state.cache, 0),
        s.cache.keys,
        s.cache.keys_with_ttl,
    )];
    let dbs = s.keyspace.as_deref().unwrap_or(&all);
    for &(db, keys, expires) in dbs.iter().filter(|(_, keys, _)| *keys > 0) {
        // avg_ttl is not tracked (Redis's is a sampled estimate too); 0 means unknown.
        line!(
            out,
            format_args!("db{db}"),
            "keys={},expires={},avg_ttl=0",
            keys,
            expires
        );
    }
}

fn citadel(out: &mut String, s: &Snapshot<'_>) {
    let st = s.state;
    let c = &s.cache;
    line!(out, "threads", "{}", st.threads);
    let uptime_ns = st.started.elapsed().as_nanos().max(1) as f64;
    for (i, t) in st.thread_stats.iter().enumerate() {
        let (commands, t) = (t.commands.load(Ordering::Relaxed), &*t.net);
        let busy = t.busy_ns.load(Ordering::Relaxed);
        line!(
            out,
            format_args!("thread{i}"),
            "load={:.3},load_avg={:.3},commands={},connections={},net_in={},net_out={}",
            s.rates.thread_load.get(i).copied().unwrap_or(0.0),
            busy as f64 / uptime_ns,
            commands,
            t.connections.load(Ordering::Relaxed),
            t.bytes_in.load(Ordering::Relaxed),
            t.bytes_out.load(Ordering::Relaxed),
        );
    }
    let txn = |f: fn(&crate::stats::TxnCounters) -> &std::sync::atomic::AtomicU64| {
        st.thread_stats
            .iter()
            .map(|t| f(&t.txn).load(Ordering::Relaxed))
            .sum::<u64>()
    };
    line!(out, "txn_execs", "{}", txn(|t| &t.execs));
    line!(out, "txn_retries", "{}", txn(|t| &t.retries));
    line!(out, "txn_watch_aborts", "{}", txn(|t| &t.watch_aborts));
    line!(out, "script_retries", "{}", txn(|t| &t.script_retries));
    line!(out, "txn_write_holds", "{}", txn(|t| &t.write_holds));
    line!(out, "cache_file", "{}", st.cache.path().display());
    line!(out, "cache_file_bytes", "{}", c.file_bytes);
    line!(out, "cache_huge_pages", "{}", st.cache.huge_pages().token());
    line!(out, "cache_used_bytes", "{}", c.used_bytes);
    line!(out, "cache_index_bytes", "{}", c.index_bytes);
    line!(out, "cache_keys", "{}", c.keys);
    for (level, (used, total)) in c.level_fill.iter().enumerate() {
        let fill = if *total == 0 {
            0.0
        } else {
            *used as f64 / *total as f64
        };
        line!(
            out,
            format_args!("cache_index_level{level}"),
            "used={used},slots={total},fill={fill:.4}"
        );
    }
    line!(out, "cache_segments_total", "{}", c.segments_total);
    line!(out, "cache_segments_free", "{}", c.segments_free);
    line!(out, "cache_evictions", "{}", c.evictions);
    line!(out, "cache_expirations", "{}", c.expirations);
}

fn overload(out: &mut String, s: &Snapshot<'_>) {
    super::overload_info::section(out, s.state);
}

fn pipelines(out: &mut String, s: &Snapshot<'_>) {
    super::pipeline_info::info_section(out, s.state);
}

fn plugins(out: &mut String, s: &Snapshot<'_>) {
    super::plugin::info_section(out, s.state);
}

fn hotkeys(out: &mut String, s: &Snapshot<'_>) {
    super::hotkeys::info_section(out, s.state);
}

fn readthrough(out: &mut String, s: &Snapshot<'_>) {
    crate::readthrough::stats::info_section(out, s.state.readthrough.get().map(|r| &**r));
}
