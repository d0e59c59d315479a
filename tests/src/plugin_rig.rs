//! A server with `[[plugin]]` tables and the PLUGIN commands tests use
//! (call, INFO as a map, polling with a deadline).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::redis::{self, Connection};
use crate::Server;

/// A server started with `[[plugin]]` tables (the config file lives in `dir`).
pub struct Rig {
    pub server: Server,
    pub dir: tempfile::TempDir,
}

impl Rig {
    pub fn start(plugins: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugins.toml");
        std::fs::write(&path, plugins).unwrap();
        let server = Server::start(&["--config", path.to_str().unwrap()]);
        Rig { server, dir }
    }
}

pub fn call(con: &mut Connection, plugin: &str, payload: &str) -> redis::RedisResult<String> {
    redis::cmd("PLUGIN")
        .arg("CALL")
        .arg(plugin)
        .arg(payload)
        .query(con)
}

/// PLUGIN INFO as a map.
pub fn info(con: &mut Connection, plugin: &str) -> HashMap<String, String> {
    let flat: Vec<String> = redis::cmd("PLUGIN")
        .arg("INFO")
        .arg(plugin)
        .query(con)
        .unwrap();
    flat.chunks(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect()
}

pub fn field(con: &mut Connection, plugin: &str, key: &str) -> u64 {
    info(con, plugin)[key].parse().unwrap()
}

/// Polls `ok` until it holds; panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
