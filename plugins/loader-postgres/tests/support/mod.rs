//! Plays the Citadel server for the loader: creates a ring pair, starts the
//! real `citadel-loader-postgres` binary on it (against a private
//! PostgreSQL from `citadel_tests::postgres`), sends `LoadRequest`s and
//! decodes every record that comes back. The loader is killed on drop.
#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use citadel_proto::ring::{ReserveError, SendError};
use citadel_proto::schema::{ErrorReply, Invalidation, LoadReply, LoadRequest, LoadRequestArgs};
use citadel_proto::{plugin_command, Backing, Envelope, Format, HostPair, Kind, SpinPolicy};
use citadel_tests::postgres::{Postgres, CHANNEL, COUNTED_QUERY};
use flatbuffers::{root, FlatBufferBuilder};

/// What a request got back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Found { value: Vec<u8>, ttl_ms: u64 },
    NotFound,
    Failed { code: u32, message: String },
    Other { kind: Kind, status: u32 },
}

impl Outcome {
    pub fn found(value: &[u8]) -> Self {
        Self::Found {
            value: value.to_vec(),
            ttl_ms: 0,
        }
    }
}

/// An unsolicited record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Keys(Vec<Vec<u8>>),
    Resync,
}

#[derive(Clone, Debug)]
pub struct Got {
    pub outcome: Outcome,
    pub attempt: u16,
    pub at: Instant,
}

/// The loader under test and the server's end of its rings.
pub struct Loader {
    host: HostPair,
    args: Vec<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    starts: usize,
    /// Replies by request id, in arrival order (duplicates after a restart).
    pub got: BTreeMap<u64, Vec<Got>>,
    pub notices: Vec<(Instant, Notice)>,
}

impl Loader {
    /// The loader on `pg` with the counting query, the example channel and
    /// short reconnect pauses, plus `extra` flags (later flags win).
    pub fn start(pg: &Postgres, extra: &[&str]) -> Loader {
        let mut args: Vec<String> = [
            "--dsn",
            &pg.dsn(),
            "--query",
            COUNTED_QUERY,
            "--listen-channel",
            CHANNEL,
            "--reconnect-max-ms",
            "200",
            "--query-timeout-ms",
            "3000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut loader = Loader {
            host: HostPair::create("pg-loader", 1 << 20, 1 << 20, &Backing::Memfd).unwrap(),
            args,
            dir: tempfile::tempdir().unwrap(),
            child: None,
            starts: 0,
            got: BTreeMap::new(),
            notices: Vec::new(),
        };
        loader.spawn();
        loader
    }

    /// Starts the loader (again) on the same rings.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "the loader is running");
        self.starts += 1;
        let log = std::fs::File::create(self.log_path()).unwrap();
        let child = plugin_command(
            env!("CARGO_BIN_EXE_citadel-loader-postgres"),
            &[&self.host],
            3,
        )
        .args(&self.args)
        .env("RUST_LOG", "debug,tokio_postgres=info")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn the loader");
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("loader.log.{}", self.starts))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("loader running").id()
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait (at most `patience`).
    pub fn terminate(&mut self, patience: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("loader running");
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the loader did not exit on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Publishes a `LoadRequest` for `key` as request `id` (no deadline).
    pub fn request(&mut self, id: u64, key: &[u8]) {
        self.request_with_deadline(id, key, 0);
    }

    pub fn request_with_deadline(&mut self, id: u64, key: &[u8], deadline_ms: u64) {
        let payload = load_request(key);
        let env = Envelope {
            deadline_ms,
            ..Envelope::request(id).with_format(Format::FlatBuffer)
        };
        loop {
            match self.host.requests.send(&env, &payload) {
                Ok(()) => return,
                Err(SendError::Reserve(ReserveError::Full { .. })) => {
                    self.pump(|_| true, Duration::from_millis(5));
                }
                Err(e) => panic!("sending request {id}: {e}"),
            }
        }
    }

    /// Sends request `id` for `key` and waits (at most `limit`) for its
    /// answer; returns it and how long it took.
    pub fn load(&mut self, id: u64, key: &[u8], limit: Duration) -> (Outcome, Duration) {
        let start = Instant::now();
        self.request(id, key);
        assert!(
            self.pump(|l| l.got.contains_key(&id), limit),
            "no answer to request {id} within {limit:?}\n{}",
            self.log()
        );
        (self.got[&id][0].outcome.clone(), start.elapsed())
    }

    /// Reads records until `done(self)` (returns true) or `limit` passes
    /// (returns false). Panics if the loader exits.
    pub fn pump(&mut self, done: impl Fn(&Self) -> bool, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            self.drain();
            if done(self) {
                return true;
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("the loader exited ({status}):\n{}", self.log());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.host
                .replies
                .wait(
                    SpinPolicy::PARK_AT_ONCE,
                    Some(left.min(Duration::from_millis(20))),
                )
                .unwrap();
        }
    }

    fn drain(&mut self) {
        let at = Instant::now();
        while let Some(r) = self.host.replies.read().unwrap() {
            let env = r.envelope();
            if env.kind == Kind::Invalidation {
                assert_eq!((env.id, env.format), (0, Format::FlatBuffer));
                self.notices.push((at, notice(r.payload())));
                continue;
            }
            self.got.entry(env.id).or_default().push(Got {
                outcome: outcome(&env, r.payload()),
                attempt: env.attempt,
                at,
            });
        }
        self.host.replies.commit_read();
    }

    /// Requests the server has published and the loader not yet committed.
    pub fn uncommitted_bytes(&mut self) -> u64 {
        self.host.requests.in_flight()
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("--- loader log ---\n{}", self.log());
        }
    }
}

pub fn load_request(key: &[u8]) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let key = Some(fbb.create_vector(key));
    let command = Some(fbb.create_string("GET"));
    let req = LoadRequest::create(
        &mut fbb,
        &LoadRequestArgs {
            key,
            command,
            args: None,
        },
    );
    fbb.finish(req, None);
    fbb.finished_data().to_vec()
}

fn outcome(env: &Envelope, payload: &[u8]) -> Outcome {
    match (env.kind, env.format) {
        (Kind::Reply, Format::FlatBuffer) => {
            let r = root::<LoadReply>(payload).expect("a LoadReply");
            assert_eq!(env.status, 0);
            match r.value() {
                Some(v) if r.found() => Outcome::Found {
                    value: v.bytes().to_vec(),
                    ttl_ms: r.ttl_ms(),
                },
                _ => {
                    assert!(!r.found(), "found without a value");
                    Outcome::NotFound
                }
            }
        }
        (Kind::Error, Format::FlatBuffer) => {
            let r = root::<ErrorReply>(payload).expect("an ErrorReply");
            assert_eq!(env.status, r.code(), "the status repeats the code");
            Outcome::Failed {
                code: r.code(),
                message: r.message().unwrap_or_default().to_string(),
            }
        }
        (Kind::Error, Format::Raw) => Outcome::Failed {
            code: env.status,
            message: String::from_utf8_lossy(payload).into_owned(),
        },
        (kind, _) => Outcome::Other {
            kind,
            status: env.status,
        },
    }
}

fn notice(payload: &[u8]) -> Notice {
    let inv = root::<Invalidation>(payload).expect("an Invalidation");
    if inv.resync() {
        assert!(inv.keys().is_none_or(|k| k.is_empty()));
        return Notice::Resync;
    }
    let keys = inv
        .keys()
        .expect("keys")
        .iter()
        .map(|k| k.value().expect("a key").bytes().to_vec())
        .collect();
    Notice::Keys(keys)
}

/// Waits until the loader's LISTEN is in place (its first resync notice).
pub fn wait_listening(loader: &mut Loader) {
    assert!(
        loader.pump(
            |l| l.notices.iter().any(|(_, n)| *n == Notice::Resync),
            Duration::from_secs(10)
        ),
        "the loader never subscribed to {CHANNEL}\n{}",
        loader.log()
    );
}
