//! A server with `[[plugin]]` tables and the PLUGIN commands tests use
//! (call, INFO as a map, polling with a deadline).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::redis::{self, Connection};
use crate::Server;

/// The plugin tests poll with the harness's one `wait_until`.
pub use crate::clients::wait_until;

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

/// `clients` threads calling an echo plugin in a loop until stopped; each
/// returns (calls answered correctly, every other outcome).
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<(u64, Vec<String>)>>,
}

impl Load {
    /// The load on plugin `echo`.
    pub fn start(rig: &Rig, clients: usize) -> Load {
        Load::start_on(rig, "echo", clients)
    }

    /// The load on `plugin` (the echo plugin under another name).
    pub fn start_on(rig: &Rig, plugin: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..clients)
            .map(|w| {
                let mut c = rig.server.client();
                let stop = stop.clone();
                let plugin = plugin.to_string();
                std::thread::spawn(move || {
                    let (mut ok, mut errors) = (0u64, Vec::new());
                    let mut i = 0;
                    while !stop.load(Relaxed) {
                        let payload = format!("w{w}-{i}");
                        match call(&mut c, &plugin, &payload) {
                            Ok(r) if r == payload.to_uppercase() => ok += 1,
                            other => errors.push(format!("{payload}: {other:?}")),
                        }
                        i += 1;
                    }
                    (ok, errors)
                })
            })
            .collect();
        Load { stop, workers }
    }

    /// Stops the load; panics on any failed or wrong call; returns the calls.
    pub fn finish(self) -> u64 {
        self.stop.store(true, Relaxed);
        let mut total = 0;
        for w in self.workers {
            let (ok, errors) = w.join().unwrap();
            assert!(errors.is_empty(), "failed calls: {errors:?}");
            total += ok;
        }
        total
    }
}
