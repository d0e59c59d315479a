//! Test support: real redis-server / memcached processes on free ports (stopped on drop,
//! also when a test panics), a tiny raw client, and a way to run the loadgen binary.
#![allow(dead_code)]

pub mod redis_cluster;
pub mod rpc_server;
pub mod shm_server;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Fails the test (never skips it) when a server binary is missing.
pub fn require(bin: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{bin} not found on PATH: run tests/run.sh, which installs redis-server, \
                 redis-tools and memcached (or: apt-get install -y redis-server redis-tools memcached)"
            )
        })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process that is killed and reaped when dropped (its scratch directory, if
/// any, removed).
pub struct Server {
    pub child: Child,
    pub port: u16,
    scratch: Option<PathBuf>,
}

impl Server {
    pub fn redis() -> Server {
        Server::redis_with(&[])
    }

    /// A redis-server that also serves RESP on the Unix socket `path`.
    pub fn redis_unix(path: &str) -> Server {
        Server::redis_with(&["--unixsocket", path, "--unixsocketperm", "700"])
    }

    fn redis_with(extra: &[&str]) -> Server {
        let bin = require("redis-server");
        let port = free_port();
        let child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let s = Server {
            child,
            port,
            scratch: None,
        };
        s.wait_ready(b"PING\r\n", b"+PONG");
        s
    }

    pub fn memcached() -> Server {
        let bin = require("memcached");
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args([
            "-p",
            &port.to_string(),
            "-l",
            "127.0.0.1",
            "-U",
            "0",
            "-t",
            "1",
            "-m",
            "64",
        ]);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            cmd.args(["-u", "root"]);
        }
        let child = cmd.stdout(Stdio::null()).spawn().expect("start memcached");
        let s = Server {
            child,
            port,
            scratch: None,
        };
        s.wait_ready(b"version\r\n", b"VERSION");
        s
    }

    /// Citadel (`$CITADEL_BIN`, else the workspace's release build) with one thread and a
    /// private cache file.
    pub fn citadel() -> Server {
        let port = free_port();
        let scratch = Path::new(if Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        })
        .join(format!("loadgen-citadel-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&scratch).unwrap();
        let log = std::fs::File::create(scratch.join("log")).unwrap();
        let child = Command::new(citadel_bin())
            .args([
                "--port",
                &port.to_string(),
                "--rpc-port",
                "0",
                "--threads",
                "1",
            ])
            // Core admission off on shared CI cores (see tests/src/lib.rs).
            .args(["--overload-delay-target-us", "0"])
            .args(["--maxmemory", "64mb", "--cache-file"])
            .arg(scratch.join("cache"))
            .arg("--discovery-dir")
            .arg(scratch.join("discovery"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start citadel");
        let s = Server {
            child,
            port,
            scratch: Some(scratch),
        };
        s.wait_ready(b"*1\r\n$4\r\nPING\r\n", b"+PONG");
        s
    }

    /// Runs one command (sent as a RESP array) and returns its one-line reply, e.g. `:3`.
    pub fn command(&self, args: &[&str]) -> String {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req += &format!("${}\r\n{a}\r\n", a.len());
        }
        self.request(req.as_bytes(), b"\r\n").trim_end().to_string()
    }

    /// An integer reply (`LLEN`, `SCARD`, ...).
    pub fn int(&self, args: &[&str]) -> i64 {
        let reply = self.command(args);
        (reply.strip_prefix(':').and_then(|n| n.parse().ok()))
            .unwrap_or_else(|| panic!("{args:?} answered {reply:?}"))
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self, probe: &[u8], expect: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(reply) = self.try_request(probe) {
                if reply.starts_with(expect) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server on port {} did not become ready", self.port);
    }

    fn try_request(&self, req: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(req)?;
        let mut buf = vec![0; 4096];
        let n = s.read(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Sends `req` and reads until the reply ends with `terminator`.
    pub fn request(&self, req: &[u8], terminator: &[u8]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(req).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while !out.ends_with(terminator) {
            let n = s.read(&mut buf).expect("read reply");
            assert!(n > 0, "server closed the connection");
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A numeric field from Redis `INFO stats` or memcached `stats`.
    pub fn stat(&self, name: &str, redis: bool) -> u64 {
        let text = if redis {
            self.request(b"INFO stats\r\n", b"\r\n\r\n")
        } else {
            self.request(b"stats\r\n", b"END\r\n")
        };
        text.lines()
            .find_map(|l| {
                let l = l.strip_prefix("STAT ").unwrap_or(l);
                let (k, v) = l.split_once([':', ' '])?;
                (k == name).then(|| v.trim().parse().ok()).flatten()
            })
            .unwrap_or_else(|| panic!("no {name} in stats: {text}"))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `$CITADEL_BIN`, or the workspace's release `citadel` (`cargo test --workspace` and
/// `tests/run.sh` build it; a run of this crate's tests alone needs `cargo build
/// --release -p citadel-server` first).
pub fn citadel_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("CITADEL_BIN") {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release/citadel");
    assert!(
        bin.is_file(),
        "{} not found: build it (cargo build --release -p citadel-server) or set CITADEL_BIN",
        bin.display()
    );
    bin
}

/// The loadgen binary with `args` plus `-q --json <tmp>`.
pub fn loadgen(args: &[&str]) -> (Command, PathBuf) {
    let json = std::env::temp_dir().join(format!(
        "loadgen-test-{}-{}.json",
        std::process::id(),
        free_port()
    ));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_citadel-loadgen"));
    cmd.args(args).arg("-q").arg("--json").arg(&json);
    (cmd, json)
}

/// Runs the loadgen to completion; returns its exit status, JSON report and output.
pub fn run_loadgen(args: &[&str]) -> (ExitStatus, Value, Output) {
    let (mut cmd, json) = loadgen(args);
    let out = cmd.output().expect("run citadel-loadgen");
    let report = read_json(&json, &out);
    (out.status, report, out)
}

pub fn read_json(path: &PathBuf, out: &Output) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "no JSON report at {}: {e}\nstdout: {}\nstderr: {}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let _ = std::fs::remove_file(path);
    serde_json::from_str(&text).expect("valid JSON report")
}

pub fn u(v: &Value, path: &str) -> u64 {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_u64()
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

pub fn f(v: &Value, path: &str) -> f64 {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_f64()
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}
