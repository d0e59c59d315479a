//! Test rigs. In process: the server's end of one ring pair, and a
//! `Plugin` serving the other end on a thread (stopped through its
//! `Stopper`). Across processes: this test binary re-executed as the
//! plugin (an ignored test `plugin_child`), logging each handler call.
#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use citadel_plugin::{Options, Plugin, PluginEnd, ServeError, Stopper};
use citadel_proto::ring::{Consumer, EventFd, Producer, Ring};
use citadel_proto::{plugin_command, Envelope, Format, HostPair, Kind, SpinPolicy};

/// Starts this test binary as the plugin of `host`: its ignored test
/// `plugin_child`, with `TEST_PLUGIN_MODE=mode` and `TEST_PLUGIN_LOG=log`.
pub fn spawn_child(host: &HostPair, mode: &str, log: &Path) -> Child {
    plugin_command(std::env::current_exe().unwrap(), &[host], 3)
        .args([
            "--exact",
            "plugin_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TEST_PLUGIN_MODE", mode)
        .env("TEST_PLUGIN_LOG", log)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGTERM, then waits for the exit status.
pub fn terminate(mut child: Child) -> ExitStatus {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    child.wait().unwrap()
}

/// `(id, attempt)` per handler call, in order, from a child's log.
pub fn read_log(path: &Path) -> Vec<(u64, u16)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (id, attempt) = l.split_once(' ').unwrap();
            (id.parse().unwrap(), attempt.parse().unwrap())
        })
        .collect()
}

/// In `plugin_child`: the log file the test named, opened for appending.
pub fn child_log() -> std::fs::File {
    let path = std::env::var("TEST_PLUGIN_LOG").expect("started by a test");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// Logs one handler call as `id attempt`: one unbuffered write, so it
/// survives a SIGKILL right after.
pub fn log_call(log: &mut std::fs::File, id: u64, attempt: u16) {
    use std::io::Write;
    log.write_all(format!("{id} {attempt}\n").as_bytes())
        .unwrap();
}

/// A temporary path private to this test process.
pub fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("citadel-sdk-{}-{name}", std::process::id()))
}

/// Reads (and commits) every record waiting in `ring` into `got`.
pub fn read_all(ring: &mut Consumer, got: &mut Vec<Got>) {
    while let Some(r) = ring.read().unwrap() {
        let e = r.envelope();
        got.push(Got {
            id: e.id,
            kind: e.kind,
            format: e.format,
            status: e.status,
            attempt: e.attempt,
            payload: r.copy_payload(),
        });
    }
    ring.commit_read();
}

/// A reply as the server reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Got {
    pub id: u64,
    pub kind: Kind,
    pub format: Format,
    pub status: u32,
    pub attempt: u16,
    pub payload: Vec<u8>,
}

pub struct Rig {
    pub requests: Producer,
    pub replies: Consumer,
    pub stopper: Stopper,
    pub plugin: Option<JoinHandle<Result<(), ServeError>>>,
    /// Every record read so far, in arrival order.
    pub got: Vec<Got>,
}

/// Both ends of a ring pair: (server's request producer, server's reply
/// consumer, the plugin's end).
pub fn ring_pair(request_capacity: u64, reply_capacity: u64) -> (Producer, Consumer, PluginEnd) {
    let req = Ring::create_memfd("sdk-test.req", request_capacity).unwrap();
    let rep = Ring::create_memfd("sdk-test.rep", reply_capacity).unwrap();
    let (req_efd, rep_efd) = (EventFd::new().unwrap(), EventFd::new().unwrap());
    let end = PluginEnd {
        requests: Consumer::attach(req.clone(), req_efd.try_clone().unwrap()),
        replies: Producer::attach(rep.clone(), rep_efd.try_clone().unwrap()),
        outputs: Vec::new(),
    };
    (
        Producer::attach(req, req_efd),
        Consumer::attach(rep, rep_efd),
        end,
    )
}

impl Rig {
    /// Starts `serve(plugin)` on a thread over a fresh ring pair.
    pub fn start(
        reply_capacity: u64,
        options: Options,
        serve: impl FnOnce(Plugin) -> Result<(), ServeError> + Send + 'static,
    ) -> (Rig, citadel_plugin::Notifier) {
        let (requests, replies, end) = ring_pair(1 << 16, reply_capacity);
        let plugin = Plugin::new(vec![end], options).unwrap();
        let (stopper, notifier) = (plugin.stopper(), plugin.notifier());
        let rig = Rig {
            requests,
            replies,
            stopper,
            plugin: Some(std::thread::spawn(move || serve(plugin))),
            got: Vec::new(),
        };
        (rig, notifier)
    }

    pub fn send(&mut self, env: Envelope, payload: &[u8]) {
        self.requests.send(&env, payload).unwrap();
    }

    /// Reads replies until `done(&self.got)` or `limit` passes.
    pub fn pump(&mut self, limit: Duration, done: impl Fn(&[Got]) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            read_all(&mut self.replies, &mut self.got);
            if done(&self.got) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.replies
                .wait(
                    SpinPolicy::PARK_AT_ONCE,
                    Some(left.min(Duration::from_millis(10))),
                )
                .unwrap();
        }
    }

    /// Replies by id.
    pub fn by_id(&self) -> BTreeMap<u64, Vec<Got>> {
        let mut m: BTreeMap<u64, Vec<Got>> = BTreeMap::new();
        for g in &self.got {
            m.entry(g.id).or_default().push(g.clone());
        }
        m
    }

    /// Request bytes published and not committed by the plugin.
    pub fn uncommitted(&mut self) -> u64 {
        self.requests.in_flight()
    }

    /// Waits until the plugin has committed all but `bytes` request bytes.
    pub fn wait_uncommitted(&mut self, bytes: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.uncommitted() != bytes {
            assert!(
                Instant::now() < deadline,
                "{} bytes uncommitted, want {bytes}",
                self.uncommitted()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the plugin and returns how its loop ended.
    pub fn stop(&mut self) -> Result<(), ServeError> {
        self.stopper.stop();
        self.plugin.take().unwrap().join().unwrap()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(p) = self.plugin.take() {
            self.stopper.stop();
            let _ = p.join();
        }
    }
}
