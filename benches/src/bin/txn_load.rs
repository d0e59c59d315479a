//! Load for transactions and scripts, against any Redis-protocol server,
//! reporting the server's CPU per operation (its /proc utime+stime).
//!
//! redis-benchmark sends one command repeatedly, so it cannot send a
//! MULTI ... EXEC sequence; this drives the shapes it cannot:
//!
//! * `multi`: MULTI, SET a, SET b, SET c, EXEC (three random keys);
//! * `watch`: WATCH k, GET k, MULTI, SET k, EXEC, one at a time per
//!   connection, counting EXECs aborted (nil) — with many keys and uniform
//!   access nearly every abort is a false one (another key sharing k's
//!   index bucket changed), which is what this measures;
//! * `evalsha SHA`: EVALSHA SHA 2 a b v (the script is loaded by the caller).
//!
//! Usage: txn-load --port P --pid PID [--mode multi|watch|evalsha]
//!        [--sha SHA] [--conns 50] [--depth 16] [--seconds 5] [--keys 1000000]
//!        [--rounds R]
//!
//! `--rounds R` sends exactly R pipelines (or R watch cycles) per
//! connection instead of running for `--seconds`: a fixed operation count,
//! for instruction counts under callgrind (benches/script-cost.sh).

use std::time::{Duration, Instant};

struct Opts {
    port: u16,
    pid: u32,
    mode: String,
    sha: String,
    conns: usize,
    depth: usize,
    seconds: u64,
    keys: u64,
    /// Pipelines per connection (0: run for `seconds`).
    rounds: u64,
}

fn parse() -> Opts {
    let mut o = Opts {
        port: 6379,
        pid: 0,
        mode: "multi".into(),
        sha: String::new(),
        conns: 50,
        depth: 16,
        seconds: 5,
        keys: 1_000_000,
        rounds: 0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let v = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--port" => o.port = v.parse().expect("--port"),
            "--pid" => o.pid = v.parse().expect("--pid"),
            "--mode" => o.mode = v,
            "--sha" => o.sha = v,
            "--conns" => o.conns = v.parse().expect("--conns"),
            "--depth" => o.depth = v.parse().expect("--depth"),
            "--seconds" => o.seconds = v.parse().expect("--seconds"),
            "--keys" => o.keys = v.parse().expect("--keys"),
            "--rounds" => o.rounds = v.parse().expect("--rounds"),
            other => {
                eprintln!("unknown option {other}; see the file's doc comment for usage");
                std::process::exit(2);
            }
        }
    }
    o
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("server pid");
    let after = &stat[stat.rfind(')').expect("stat") + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One connection's loop; returns (operations, aborted EXECs).
fn drive(o: &Opts, id: u64, until: Instant) -> (u64, u64) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", o.port)).unwrap();
    let mut con = client.get_connection().expect("connect");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id + 1).wrapping_mul(0x2545_F491));
    let (mut ops, mut aborted, mut rounds) = (0u64, 0u64, 0u64);
    let key = |rng: &mut Rng| format!("tx:{}", rng.below(o.keys));
    let more = |rounds: u64| match o.rounds {
        0 => Instant::now() < until,
        r => rounds < r,
    };
    while more(rounds) {
        rounds += 1;
        match o.mode.as_str() {
            "watch" => {
                let k = key(&mut rng);
                let () = redis::cmd("WATCH").arg(&k).query(&mut con).unwrap();
                let _: Option<String> = redis::cmd("GET").arg(&k).query(&mut con).unwrap();
                let done: Option<(String,)> =
                    redis::pipe().atomic().set(&k, "v").query(&mut con).unwrap();
                aborted += u64::from(done.is_none());
                ops += 1;
            }
            mode => {
                let mut pipe = redis::pipe();
                for _ in 0..o.depth {
                    let (a, b, c) = (key(&mut rng), key(&mut rng), key(&mut rng));
                    if mode == "evalsha" {
                        // The script SETs its first key and INCRs its second.
                        let counter = format!("cnt:{}", &b[3..]);
                        pipe.cmd("EVALSHA")
                            .arg(&o.sha)
                            .arg(2)
                            .arg(&a)
                            .arg(counter)
                            .arg("v");
                    } else {
                        pipe.cmd("MULTI").cmd("SET").arg(&a).arg("v");
                        pipe.cmd("SET").arg(&b).arg("v").cmd("SET").arg(&c).arg("v");
                        pipe.cmd("EXEC");
                    }
                }
                let _: Vec<redis::Value> = pipe.query(&mut con).unwrap();
                ops += o.depth as u64;
            }
        }
    }
    (ops, aborted)
}

fn main() {
    let o = parse();
    let ticks_per_s = 100.0; // USER_HZ on Linux
    let until = Instant::now() + Duration::from_secs(o.seconds);
    let (start, cpu0) = (Instant::now(), cpu_ticks(o.pid));
    let results: Vec<(u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..o.conns)
            .map(|id| {
                let o = &o;
                s.spawn(move || drive(o, id as u64, until))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (elapsed, cpu) = (start.elapsed().as_secs_f64(), cpu_ticks(o.pid) - cpu0);
    let ops: u64 = results.iter().map(|r| r.0).sum();
    let aborted: u64 = results.iter().map(|r| r.1).sum();
    println!(
        "{{\"mode\":\"{}\",\"ops\":{ops},\"ops_per_sec\":{:.0},\"server_cpu_us_per_op\":{:.3},\"aborted\":{aborted},\"abort_rate\":{:.6}}}",
        o.mode,
        ops as f64 / elapsed,
        cpu as f64 / ticks_per_s * 1e6 / ops.max(1) as f64,
        aborted as f64 / ops.max(1) as f64
    );
}
