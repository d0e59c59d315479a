//! GET round-trip latency of the blocking RPC client, one request at a
//! time, over each transport a running server offers: shared memory
//! (`--shm-socket`), the Unix socket (`--rpc-unixsocket`) and TCP
//! (`--rpc-port`), for a small (64 B) and a large (100 KB) value.
//!
//! Each round runs a slice of every transport's iterations in turn, so a
//! noisy neighbour hurts them all alike. Prints a markdown table (p50,
//! p99, mean in µs) and the ratios: Unix socket over shm at 64 B, and the
//! 100 KB shm round trip against the 25 µs target and the old sidecar's
//! 160 µs over Unix sockets.
//!
//! Usage: rpc-roundtrip [--host H] [--rpc-port N] [--rpc-unixsocket PATH]
//!        [--shm-socket PATH] [--warmup N] [--small-iters N] [--large-iters N]
//!        [--rounds N]

use std::time::Instant;

use citadel_client::{Client, Endpoint};

/// The 100 KB round trip the shm transport aims for, and what the old
/// sidecar took over a Unix socket.
const TARGET_US: f64 = 25.0;
const SIDECAR_US: f64 = 160.0;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    transports: Vec<(&'static str, Endpoint)>,
    warmup: usize,
    small_iters: usize,
    large_iters: usize,
    rounds: usize,
}

fn parse_args() -> Res<Args> {
    let mut host = "127.0.0.1".to_string();
    let (mut tcp, mut unix, mut shm) = (None, None, None);
    let mut a = Args {
        transports: Vec::new(),
        warmup: 2_000,
        small_iters: 20_000,
        large_iters: 5_000,
        rounds: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--host" => host = value,
            "--rpc-port" => tcp = Some(value),
            "--rpc-unixsocket" => unix = Some(value),
            "--shm-socket" => shm = Some(value),
            "--warmup" => a.warmup = value.parse()?,
            "--small-iters" => a.small_iters = value.parse()?,
            "--large-iters" => a.large_iters = value.parse()?,
            "--rounds" => a.rounds = value.parse::<usize>()?.max(1),
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    // Fastest first: the order of the table's rows.
    a.transports.extend(shm.map(|p| ("shm", Endpoint::shm(p))));
    a.transports
        .extend(unix.map(|p| ("unix", Endpoint::unix(p))));
    a.transports
        .extend(tcp.map(|p| ("tcp", Endpoint::tcp(format!("{host}:{p}")))));
    if a.transports.is_empty() {
        return Err("give at least one of --shm-socket, --rpc-unixsocket, --rpc-port".into());
    }
    Ok(a)
}

/// Round-trip times of one transport for one value size, in ns.
struct Series {
    transport: &'static str,
    client: Client,
    samples: Vec<u64>,
}

struct Summary {
    p50: f64,
    p99: f64,
    mean: f64,
}

impl Series {
    /// `iters` GETs of `key`, each timed alone.
    fn run(&mut self, key: &str, len: usize, iters: usize, keep: bool) -> Res<()> {
        for _ in 0..iters {
            let start = Instant::now();
            let value = self.client.get(key)?;
            let took = start.elapsed();
            if value.as_ref().map(Vec::len) != Some(len) {
                return Err(format!("{}: GET {key}: wrong value", self.transport).into());
            }
            if keep {
                self.samples.push(took.as_nanos() as u64);
            }
        }
        Ok(())
    }

    fn summary(&mut self) -> Summary {
        self.samples.sort_unstable();
        let at = |q: f64| {
            let i = ((self.samples.len() as f64 * q) as usize).min(self.samples.len() - 1);
            self.samples[i] as f64 / 1e3
        };
        let sum: u64 = self.samples.iter().sum();
        Summary {
            p50: at(0.50),
            p99: at(0.99),
            mean: sum as f64 / self.samples.len() as f64 / 1e3,
        }
    }
}

/// Every transport's series for a value of `len` bytes.
fn measure(args: &Args, len: usize, iters: usize) -> Res<Vec<(&'static str, Summary)>> {
    let key = format!("rpc-roundtrip:{len}");
    let mut series = args
        .transports
        .iter()
        .map(|(name, endpoint)| {
            let client = Client::connect(endpoint.clone())
                .map_err(|e| format!("{name} ({endpoint}): {e}"))?;
            Ok(Series {
                transport: name,
                client,
                samples: Vec::with_capacity(iters),
            })
        })
        .collect::<Res<Vec<_>>>()?;
    series[0].client.set(key.as_str(), vec![b'v'; len])?;
    for s in &mut series {
        s.run(&key, len, args.warmup, false)?;
    }
    for round in 0..args.rounds {
        let n = iters / args.rounds + usize::from(round < iters % args.rounds);
        for s in &mut series {
            s.run(&key, len, n, true)?;
        }
    }
    Ok(series
        .iter_mut()
        .map(|s| (s.transport, s.summary()))
        .collect())
}

fn main() -> Res<()> {
    let args = parse_args()?;
    let sizes = [
        (64, "64 B", args.small_iters),
        (100_000, "100 KB", args.large_iters),
    ];
    println!(
        "GET round trip, concurrency 1, blocking citadel-client ({} warm-up GETs, {} rounds)\n",
        args.warmup, args.rounds
    );
    println!("| value | transport | GETs | p50 µs | p99 µs | mean µs |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut results = Vec::new();
    for (len, label, iters) in sizes {
        for (transport, s) in measure(&args, len, iters)? {
            println!(
                "| {label} | {transport} | {iters} | {:.1} | {:.1} | {:.1} |",
                s.p50, s.p99, s.mean
            );
            results.push((len, transport, s));
        }
    }
    let find = |len, t| {
        results
            .iter()
            .find(|r| r.0 == len && r.1 == t)
            .map(|r| &r.2)
    };
    println!();
    if let (Some(shm), Some(unix)) = (find(64, "shm"), find(64, "unix")) {
        println!(
            "64 B, Unix socket / shm: p50 {:.2}x, mean {:.2}x",
            unix.p50 / shm.p50,
            unix.mean / shm.mean
        );
    }
    if let Some(shm) = find(100_000, "shm") {
        let verdict = if shm.p50 <= TARGET_US {
            "met"
        } else {
            "missed"
        };
        println!(
            "100 KB over shm: p50 {:.1} µs against the {TARGET_US} µs target ({verdict}, {:.2}x of it); \
             {:.1}x faster than the old sidecar's {SIDECAR_US} µs over Unix sockets",
            shm.p50,
            shm.p50 / TARGET_US,
            SIDECAR_US / shm.p50
        );
    }
    Ok(())
}
