//! A real redis-server to compare Citadel with (differential tests).
//! Skipped by nothing: tests/run.sh installs redis-server.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// A redis-server child on a free port, without persistence; killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Child,
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
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .args(bus.iter().flat_map(|p| ["--cluster-port", p.as_str()]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = child.expect("redis-server is missing: run tests/run.sh, which installs it");
        let mut server = RedisServer { port, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("redis-server {extra:?} on port {port} exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn raw(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.port)).unwrap()
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
