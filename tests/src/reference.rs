//! A real redis-server to compare Citadel with (differential tests).
//! Skipped by nothing: tests/run.sh installs redis-server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// A redis-server child on a free port, without persistence, in its own
/// directory (so no dump.rdb is read or written where the tests run);
/// killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// As [`RedisServer::start`], with more arguments (`--cluster-enabled
    /// yes --cluster-config-file <path>` for CLUSTER KEYSLOT).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let port = free_port();
        // A cluster node also listens on its bus port, port + 10000 unless
        // told: that one may be another test's, and the node exits then.
        let bus = extra
            .contains(&"--cluster-enabled")
            .then(|| free_port().to_string());
        let dir = tempfile::Builder::new()
            .prefix("citadel-reference-redis")
            .tempdir()
            .expect("a temporary directory for redis-server");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(["--logfile", "redis.log"])
            .args(extra)
            .args(bus.iter().flat_map(|p| ["--cluster-port", p.as_str()]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = child.expect("redis-server is missing: run tests/run.sh, which installs it");
        let mut server = RedisServer { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        // Ready means this child answers PING with PONG: a bare connect could
        // reach another process that holds the port, and Redis listens
        // before it has finished starting.
        while !server.answers_ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start{}",
                server.log_tail()
            );
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "redis-server {extra:?} on port {port} exited: {status}{}",
                    server.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// A new connection; panics with the child's state and log if refused.
    pub fn raw(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.port)).unwrap_or_else(|err| {
            panic!(
                "redis-server on port {} refused a connection: {err}{}",
                self.port,
                self.log_tail()
            )
        })
    }

    /// Sends a signal by name (`"STOP"`, `"CONT"`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// The end of the child's log, to say why it is gone.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!("\n--- redis-server log (last lines) ---\n{tail}")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command as a RESP array of bulk strings.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}
