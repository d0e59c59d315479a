//! Command line: `citadel-loadgen [RUN OPTIONS]` drives load; `citadel-loadgen compare` runs the
//! side-by-side harness. Every option is documented here, so `--help` is the manual.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::protocol::ProtocolKind;
use crate::workload::keys::KeyDist;
use crate::workload::mix::OpMix;

/// Citadel's load generator: RESP, memcache and Citadel RPC load over TCP or a Unix socket
/// (RPC also over shared memory), open or closed loop, honest latency.
///
/// Without `--rate` it runs closed loop: every connection keeps `--pipeline` requests in
/// flight and latency is measured from the actual send. With `--rate OPS` it runs open
/// loop: requests are due on a fixed schedule and latency is measured from the *intended*
/// send time, so a stalled server shows up as latency (no coordinated omission).
///
/// Exit status: 0 on success; 1 when the error rate exceeds `--max-errors` or the run
/// failed; 2 on bad usage.
#[derive(Debug, Parser)]
#[command(
    name = "citadel-loadgen",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start citadel, redis-server and memcached on free 127.0.0.1 ports, pin them to one
    /// core and the load to another, run identical workloads against each in alternating
    /// rounds, and print a markdown table (plus an SVG chart).
    Compare(CompareArgs),
}

/// One load run against one or more servers.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Server address host:port; repeat to spread connections across servers round-robin.
    #[arg(short = 's', long = "server", default_value = "127.0.0.1:6379")]
    pub servers: Vec<String>,

    /// Connect to this Unix stream socket instead of --server (any protocol: RESP to
    /// redis/citadel `--unixsocket`, RPC to citadel `--rpc-unixsocket`); repeat like --server.
    #[arg(long, value_name = "PATH", conflicts_with = "servers")]
    pub unix: Vec<PathBuf>,

    /// RPC over shared memory: attach to citadel's `--shm-socket PATH` instead of --server
    /// (--protocol rpc only; same host). Every connection is its own request/reply ring
    /// pair; workers spin briefly for replies, then park on the rings' eventfds. Note the
    /// server busy-polls a core for ~100 µs after each burst of shm traffic. Repeat like
    /// --server.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["servers", "unix"])]
    pub shm: Vec<PathBuf>,

    /// Wire protocol: resp (Redis, Valkey, Citadel), memcache (text), memcache-binary, or
    /// rpc (Citadel's framed RPC: -s 127.0.0.1:7379, --unix PATH or --shm PATH).
    #[arg(short = 'P', long, value_enum, default_value_t = ProtocolKind::Resp)]
    pub protocol: ProtocolKind,

    #[command(flatten)]
    pub workload: WorkloadArgs,

    /// Write every result (config, counters, errors by kind, latency percentiles) as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Fail (exit 1) when errors / requests exceeds this fraction. The default 0 means any
    /// error fails the run: a benchmark that silently lost requests is not a benchmark.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    pub max_errors: f64,

    /// Do not print the live progress line on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Cluster mode (RESP only): fetch CLUSTER SLOTS from the first --server that
    /// answers, open each connection to every node, send each request to the node serving
    /// its key's slot, follow -MOVED (update the map, refetch it) and -ASK (ASKING, then
    /// the request) redirects. The report counts the redirects followed.
    #[arg(long)]
    pub cluster: bool,

    /// Cluster mode: redirects one request may follow before it counts as an error.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub max_redirects: u8,

    /// Ramp the offered load: one open-loop run of --duration per step, in order, each
    /// reporting offered rate, goodput (good replies/s), shed replies (`-OVERLOAD ...`,
    /// counted apart from errors), errors and p50/p99 of the admitted requests. Steps are
    /// absolute rates (`10000,20000,40000`; `k`/`m` suffixes: `10k,20k`) or multiples of
    /// the capacity (`0.5x,1x,2x,3x`): then a closed-loop run (--capacity-duration) first
    /// measures the capacity as its goodput, unless --capacity gives it. --json writes
    /// every step, --svg the goodput-vs-offered-load chart. --prefill runs once, before
    /// the first run; --warmup before each.
    #[arg(long, value_name = "STEPS", conflicts_with = "rate")]
    pub rate_steps: Option<crate::steps::RateSteps>,

    /// --rate-steps with multiples: the capacity in ops/s, instead of measuring it.
    #[arg(long, value_name = "OPS", requires = "rate_steps")]
    pub capacity: Option<f64>,

    /// --rate-steps with multiples: how long the closed-loop capacity run lasts
    /// [default: --duration].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "rate_steps")]
    pub capacity_duration: Option<Duration>,

    /// --rate-steps: the server's process id (same host). Each step then reports how
    /// busy the server was (its CPU time / the step's time, 1.0 = one core saturated)
    /// beside the client's own, so a run shows which side was the bottleneck; a Citadel
    /// also tells (INFO overload, asked over RESP at the first --server) the queueing
    /// delay of the requests it admitted during the step, the server's share of the
    /// client's latency.
    #[arg(long, value_name = "PID", requires = "rate_steps")]
    pub server_pid: Option<u32>,

    /// --rate-steps: write an SVG chart of goodput (and shed) vs offered load, with the
    /// admitted requests' p99 beside it.
    #[arg(long, value_name = "FILE", requires = "rate_steps")]
    pub svg: Option<PathBuf>,
}

/// The workload shape; shared by a plain run and by `compare`.
#[derive(Debug, Clone, Args)]
pub struct WorkloadArgs {
    /// Worker threads; each runs its own io_uring event loop pinned to one allowed core.
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,

    /// Connections per thread.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub conns: usize,

    /// Requests in flight per connection (1 = no pipelining). With RPC, replies are
    /// matched by request id, so they may come back in any order.
    #[arg(short = 'p', long, default_value_t = 1)]
    pub pipeline: usize,

    /// Write like redis-benchmark: a connection sends its next --pipeline requests (in
    /// one write) only once every reply of the previous ones arrived, and each write is
    /// its own syscall (no batching of several connections' sends into one submit).
    /// Default: top each pipeline up as replies arrive, all sends in one submit.
    #[arg(long)]
    pub lockstep: bool,

    /// RPC only: operations per frame. Up to N queued operations travel as one Batch frame
    /// (one BatchReply back); --pipeline still counts operations in flight, so -p 16
    /// --batch 16 keeps one frame of 16 in flight (like redis-benchmark -P 16). A batch is
    /// never held back to fill: what is due goes out (open loop sends small batches).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub batch: usize,

    /// Operation mix SET:GET, e.g. 1:10 (one SET per ten GETs), 1:0 (SET only), 0:1 (GET only).
    #[arg(short = 'r', long, default_value = "1:10")]
    pub ratio: Ratio,

    /// Operation mix by name instead of --ratio: OP[:WEIGHT],... (weight 1 if omitted),
    /// e.g. `lpush`, `lpush,rpush:3`, `get:10,set:1`. Besides get and set, the collection
    /// operations of redis-benchmark's tests of the same names (RESP only), sent as it
    /// sends them: lpush/rpush (`LPUSH mylist VALUE`), lpop/rpop (`LPOP mylist`), sadd
    /// (`SADD myset element:N`), hset (`HSET myhash element:N VALUE`), spop (`SPOP
    /// myset`), zadd (`ZADD myzset N element:N`), zpopmin (`ZPOPMIN myzset`), lrange_100
    /// and lrange_600 (`LRANGE mylist 0 99` / `0 599`). VALUE is a --value-size value
    /// (redis-benchmark's -d is 3), N has 12 zero-padded digits. Pops count hits (an
    /// element came back) and misses (nil); an LRANGE counts the elements it returned as
    /// hits and the rest of its 100 or 600 as misses. Nothing is prefilled for them: run
    /// the pushes or adds first (e.g. `--ops lpush -n 100000`). And bitcount (`BITCOUNT
    /// key`, RESP only) over the key space of --prefill's --value-size strings: a read
    /// whose server cost grows with the value size while request and reply stay small
    /// (e.g. `--ops bitcount -d 65536 -k 1000 --prefill` to overload a server core from
    /// one client core).
    #[arg(long, value_name = "OP[:WEIGHT],...", conflicts_with = "ratio")]
    pub ops: Option<OpMix>,

    /// Collection keys of --ops: 1 (like redis-benchmark): every operation of a type on
    /// one key, mylist, myset, myhash or myzset; N: spread over mylist:0 .. mylist:N-1
    /// (and so on), drawn with --key-dist.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub collection_keys: u64,

    /// Element space of sadd, hset and zadd: element:N with N uniform in 0..ELEMENTS-1,
    /// like redis-benchmark -r ELEMENTS. The default 1 always sends element:000000000000
    /// (redis-benchmark without -r also sends one fixed element), so a set or hash stays
    /// at one element. At most 10^12.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub elements: u64,

    /// Size of the key space: keys are PREFIX0 .. PREFIX{N-1}.
    #[arg(short = 'k', long, default_value_t = 100_000)]
    pub keys: u64,

    /// Key name prefix.
    #[arg(long, default_value = "key:")]
    pub key_prefix: String,

    /// Each GET becomes an MGET of N keys (RESP only): the keys of the chosen key's group
    /// of N. Keys are then named PREFIX{GROUP}:INDEX (GROUP = INDEX / N) for SETs and the
    /// prefill too, so a group shares a hash tag and, in --cluster mode, one slot: every
    /// MGET goes to one node whole. A reply must hold exactly the group's values.
    #[arg(long, value_name = "N")]
    pub mget: Option<usize>,

    /// Key distribution: uniform, zipf:S (S > 0, e.g. zipf:0.99; rank 0 is hottest) or
    /// sequential (each connection walks the key space in order).
    #[arg(long, default_value = "uniform")]
    pub key_dist: KeyDist,

    /// SET value size in bytes: N, or MIN-MAX for uniform sizes in [MIN, MAX].
    #[arg(short = 'd', long, default_value = "32")]
    pub value_size: ValueSize,

    /// Measured run length (e.g. 10s, 500ms, 2m). Ignored when --requests is given.
    #[arg(short = 'D', long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Stop after exactly this many measured requests (split evenly over connections)
    /// instead of after --duration.
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,

    /// Run the workload this long before measuring; its requests are not counted.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Before the run, SET every key once (sequentially, pipelined) so GETs can hit.
    #[arg(long)]
    pub prefill: bool,

    /// Open loop: total requests per second over all connections, on a fixed schedule.
    /// Latency is measured from each request's intended send time.
    #[arg(short = 'R', long, value_name = "OPS")]
    pub rate: Option<f64>,

    /// Seed for key, operation and value choices (each connection derives its own stream).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Cores to pin worker threads to (comma list or ranges, e.g. 1 or 2-5). Default: the
    /// cores this process may run on (so `taskset -c 1 citadel-loadgen` pins to core 1).
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<CpuList>,

    /// How long to wait for in-flight replies once the run is over before counting them
    /// as timeout errors.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
}

impl WorkloadArgs {
    /// The operation mix in words, for report headers: `SET:GET 1:10`, or `ops
    /// lpush:1,rpush:3` (with the collection keys and elements when it has collections).
    pub fn mix_summary(&self) -> String {
        match &self.ops {
            None => format!("SET:GET {}:{}", self.ratio.set, self.ratio.get),
            Some(mix) if mix.has_collections() => format!(
                "ops {mix} ({} collection keys, {} elements)",
                self.collection_keys, self.elements
            ),
            Some(mix) => format!("ops {mix}"),
        }
    }
}

/// Arguments of the `compare` subcommand.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Path of the citadel binary; included when it exists and answers PING.
    #[arg(long, default_value = "target/release/citadel")]
    pub citadel: PathBuf,

    /// Which servers to run, comma separated, from citadel,redis,memcached.
    #[arg(long, value_delimiter = ',', default_value = "citadel,redis,memcached")]
    pub only: Vec<ServerKind>,

    /// Rounds; each round runs every server once, in alternating order.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,

    /// Core the servers are pinned to.
    #[arg(long, default_value_t = 0)]
    pub server_cpu: usize,

    /// Core the load generator is pinned to.
    #[arg(long, default_value_t = 1)]
    pub load_cpu: usize,

    /// Worker threads each server gets (citadel --threads, memcached -t).
    #[arg(long, default_value_t = 1)]
    pub server_threads: usize,

    /// Use memcached's binary protocol instead of text.
    #[arg(long)]
    pub memcache_binary: bool,

    /// Directory for compare.md, compare.json and compare.svg.
    #[arg(long, default_value = "target/compare")]
    pub out_dir: PathBuf,

    #[command(flatten)]
    pub workload: WorkloadArgs,
}

/// A server the compare harness can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    Citadel,
    Redis,
    Memcached,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Citadel => "citadel",
            ServerKind::Redis => "redis",
            ServerKind::Memcached => "memcached",
        }
    }
}

/// SET:GET weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Ratio {
    pub set: u32,
    pub get: u32,
}

impl FromStr for Ratio {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = s
            .split_once(':')
            .ok_or_else(|| format!("ratio {s:?} is not SET:GET"))?;
        let set = a
            .trim()
            .parse()
            .map_err(|e| format!("SET part of {s:?}: {e}"))?;
        let get = b
            .trim()
            .parse()
            .map_err(|e| format!("GET part of {s:?}: {e}"))?;
        if set == 0 && get == 0 {
            return Err("ratio 0:0 sends nothing".into());
        }
        Ok(Ratio { set, get })
    }
}

/// Value size range, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ValueSize {
    pub min: usize,
    pub max: usize,
}

impl FromStr for ValueSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parse = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|e| format!("value size {x:?}: {e}"))
        };
        let (min, max) = match s.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let n = parse(s)?;
                (n, n)
            }
        };
        if min > max {
            return Err(format!("value size {s:?}: MIN > MAX"));
        }
        if max > 64 << 20 {
            return Err(format!("value size {s:?}: at most 64 MiB"));
        }
        Ok(ValueSize { min, max })
    }
}

/// A set of CPU ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

impl FromStr for CpuList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut cpus = Vec::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let num = |x: &str| {
                x.trim()
                    .parse::<usize>()
                    .map_err(|e| format!("cpu {x:?}: {e}"))
            };
            match part.split_once('-') {
                Some((a, b)) => cpus.extend(num(a)?..=num(b)?),
                None => cpus.push(num(part)?),
            }
        }
        if cpus.is_empty() {
            return Err("empty cpu list".into());
        }
        Ok(CpuList(cpus))
    }
}

/// Parses `10s`, `500ms`, `2m`, `1h`, `250us` or a bare number of seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|e| format!("duration {s:?}: {e}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" => n / 1e6,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "duration {s:?}: unknown unit {unit:?} (use us, ms, s, m, h)"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("duration {s:?} is not a non-negative number"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("3 fortnights").is_err());
    }

    #[test]
    fn parses_ratio_sizes_cpus() {
        assert_eq!("1:10".parse::<Ratio>().unwrap(), Ratio { set: 1, get: 10 });
        assert!("0:0".parse::<Ratio>().is_err());
        assert_eq!(
            "16-64".parse::<ValueSize>().unwrap(),
            ValueSize { min: 16, max: 64 }
        );
        assert_eq!(
            "0,2-4".parse::<CpuList>().unwrap(),
            CpuList(vec![0, 2, 3, 4])
        );
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
