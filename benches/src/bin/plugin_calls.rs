//! Closed-loop PLUGIN CALL round trips against a running server, for any
//! payload size (redis-benchmark takes its payload on the command line,
//! which caps it below 128 KiB): `--clients` connections each send
//! `--calls / clients` calls of `--size` bytes to plugin `--plugin` and
//! check each reply (the echo plugin upper-cases it). Prints one line: p50
//! and p99 in µs, calls per second, and CPU per call in µs of the
//! processes `--pids` (server and plugin processes, from /proc/PID/stat:
//! user + system time over the run).
//!
//! Usage: plugin-calls --port N --plugin NAME --size BYTES [--calls N]
//!        [--clients N] [--pids P1,P2,...]

use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Args {
    port: u16,
    plugin: String,
    size: usize,
    calls: usize,
    clients: usize,
    pids: Vec<u32>,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        port: 6379,
        plugin: "echo".into(),
        size: 64,
        calls: 20_000,
        clients: 4,
        pids: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => a.port = value.parse()?,
            "--plugin" => a.plugin = value,
            "--size" => a.size = value.parse()?,
            "--calls" => a.calls = value.parse()?,
            "--clients" => a.clients = value.parse::<usize>()?.max(1),
            "--pids" => {
                a.pids = value
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(a)
}

/// User + system CPU of `pid` (all its threads) in clock ticks.
fn cpu_ticks(pid: u32) -> Res<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is
    // field 3, utime 14 and stime 15.
    let rest = &stat[stat.rfind(')').ok_or("malformed stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

fn total_ticks(pids: &[u32]) -> Res<u64> {
    pids.iter().map(|p| cpu_ticks(*p)).sum()
}

/// One connection's calls; returns each round trip in ns.
fn client(port: u16, plugin: &str, payload: &[u8], calls: usize) -> Res<Vec<u64>> {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?.get_connection()?;
    let want = payload.to_ascii_uppercase();
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        let reply: Vec<u8> = redis::cmd("PLUGIN")
            .arg("CALL")
            .arg(plugin)
            .arg(payload)
            .query(&mut con)?;
        times.push(start.elapsed().as_nanos() as u64);
        if reply != want {
            return Err(format!("wrong reply of {} bytes", reply.len()).into());
        }
    }
    Ok(times)
}

fn main() -> Res<()> {
    let a = parse_args()?;
    let payload: Vec<u8> = (0..a.size).map(|i| b'a' + (i % 26) as u8).collect();
    let per_client = a.calls.div_ceil(a.clients);
    // Warm up (connections, rings, caches), then measure.
    client(a.port, &a.plugin, &payload, (per_client / 10).max(10))?;
    let ticks_before = total_ticks(&a.pids)?;
    let start = Instant::now();
    let handles: Vec<_> = (0..a.clients)
        .map(|_| {
            let (plugin, payload) = (a.plugin.clone(), payload.clone());
            std::thread::spawn(move || client(a.port, &plugin, &payload, per_client))
        })
        .collect();
    let mut times = Vec::with_capacity(per_client * a.clients);
    for h in handles {
        times.extend(h.join().map_err(|_| "a client thread panicked")??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ticks = total_ticks(&a.pids)? - ticks_before;
    // SAFETY: sysconf takes a constant and returns a number.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    let cpu_us = ticks as f64 / hz * 1e6 / times.len() as f64;
    println!(
        "p50_us={:.1} p99_us={:.1} calls_per_s={:.0} cpu_us_per_call={:.1}",
        at(0.50),
        at(0.99),
        times.len() as f64 / elapsed,
        cpu_us
    );
    Ok(())
}
