//! An in-process rig: the server's end of one ring pair, and a `Plugin`
//! serving the other end on a thread (stopped through its `Stopper`).
#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeMap;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use citadel_plugin::{Options, Plugin, PluginEnd, ServeError, Stopper};
use citadel_proto::ring::{Consumer, EventFd, Producer, Ring};
use citadel_proto::{Envelope, Format, Kind, SpinPolicy};

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
            while let Some(r) = self.replies.read().unwrap() {
                let e = r.envelope();
                self.got.push(Got {
                    id: e.id,
                    kind: e.kind,
                    format: e.format,
                    status: e.status,
                    attempt: e.attempt,
                    payload: r.copy_payload(),
                });
            }
            self.replies.commit_read();
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
