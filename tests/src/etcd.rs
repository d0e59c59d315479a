//! Membership test parts: a private etcd (one member on free ports, its
//! own data directory, elections fast enough that etcd accepts a 1 s
//! lease), an in-process etcd membership whose events are stamped as they
//! arrive, and a `citadel-member` child process (the same membership in a
//! process the test can kill or put in another network namespace).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use citadel_membership::etcd::EtcdClient;
use citadel_membership::{EtcdConfig, EtcdMembership, Member, MemberView, MembershipEvent};

use crate::netns::Netns;
use crate::{free_port, release_bin};

/// How long a test waits for an expected event before it fails (not a
/// timing assertion: events come within a few lease TTLs).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Why etcd tests cannot run here, or `None`.
pub fn unavailable() -> Option<String> {
    let found = Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match found {
        Ok(s) if s.success() => None,
        _ => Some("no `etcd` binary (Debian package etcd-server; tests/run.sh installs it)".into()),
    }
}

/// Path of the release `citadel-member` binary (`$CITADEL_MEMBER_BIN`
/// wins), built like [`crate::citadel_bin`].
pub fn member_bin() -> &'static std::path::Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| release_bin("CITADEL_MEMBER_BIN", "citadel-member"))
}

/// A running single-member etcd; killed on drop.
pub struct Etcd {
    pub port: u16,
    peer_port: u16,
    /// The address it listens on (`127.0.0.1`, or `0.0.0.0` in a namespace).
    listen: String,
    /// The address this test process reaches it at.
    reachable_at: String,
    ns: Option<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Etcd {
    /// etcd on 127.0.0.1, free ports, a fresh data directory.
    pub fn start() -> Etcd {
        Etcd::launch(None, "127.0.0.1", "127.0.0.1", free_port(), free_port())
    }

    /// etcd inside `ns`, listening on every address there at port 2379
    /// (the namespace has its own ports); this process reaches it at
    /// `reachable_at` (its end of a link to this namespace).
    pub fn start_in(ns: &Netns, reachable_at: &str) -> Etcd {
        Etcd::launch(Some(ns), "0.0.0.0", reachable_at, 2379, 2380)
    }

    fn launch(
        ns: Option<&Netns>,
        listen: &str,
        reachable_at: &str,
        port: u16,
        peer_port: u16,
    ) -> Etcd {
        let mut etcd = Etcd {
            port,
            peer_port,
            listen: listen.to_string(),
            reachable_at: reachable_at.to_string(),
            ns: ns.map(|n| n.name().to_string()),
            dir: tempfile::Builder::new()
                .prefix("citadel-etcd")
                .tempdir()
                .unwrap(),
            child: None,
        };
        etcd.spawn();
        etcd
    }

    fn spawn(&mut self) {
        let client = format!("http://{}:{}", self.listen, self.port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .unwrap();
        let mut cmd = match &self.ns {
            None => Command::new("etcd"),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "etcd"]);
                c
            }
        };
        let data = self.dir.path().join("data");
        cmd.args(["--name", "default", "--data-dir"])
            .arg(&data)
            .args(["--listen-client-urls", &client])
            .args([
                "--advertise-client-urls",
                &client.replace("0.0.0.0", "127.0.0.1"),
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("default={peer}")])
            // Fast elections: etcd's shortest lease is 1.5 election
            // timeouts, so 250 ms lets tests use 1 s leases.
            .args(["--heartbeat-interval", "50", "--election-timeout", "250"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("spawn etcd"));
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        let mut client = self.client();
        loop {
            let deadline = Instant::now() + Duration::from_millis(500);
            if client.range_prefix("/", deadline).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("etcd exited ({status}): {}", self.log());
            }
            assert!(
                started.elapsed() < PATIENCE,
                "etcd not ready: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://host:port` for a client reaching etcd at `host`.
    pub fn url_at(&self, host: &str) -> String {
        format!("http://{host}:{}", self.port)
    }

    /// The client URL this test process reaches it at.
    pub fn url(&self) -> String {
        self.url_at(&self.reachable_at)
    }

    pub fn client(&self) -> EtcdClient {
        EtcdClient::from_urls(&[self.url()]).unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    /// SIGKILL; the data directory stays for [`restart`](Self::restart).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Events stamped with the instant they were sent (a thread receives and
/// stamps them at once, whatever the test is doing).
pub struct Stamped<T> {
    rx: mpsc::Receiver<(Instant, T)>,
}

impl<T: Send + 'static> Stamped<T> {
    fn forward(source: impl Iterator<Item = T> + Send + 'static) -> Stamped<T> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for item in source {
                if tx.send((Instant::now(), item)).is_err() {
                    return;
                }
            }
        });
        Stamped { rx }
    }

    /// The first item (from now) that `want` accepts, and when it came;
    /// panics after [`PATIENCE`].
    pub fn wait_for(&self, what: &str, mut want: impl FnMut(&T) -> bool) -> (Instant, T) {
        let give_up = Instant::now() + PATIENCE;
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((at, item)) if want(&item) => return (at, item),
                Ok(_) => {}
                Err(e) => panic!("waiting for {what}: {e}"),
            }
        }
    }

    /// Everything that arrived so far.
    pub fn drain(&self) -> Vec<(Instant, T)> {
        self.rx.try_iter().collect()
    }
}

/// A member record for a test node named `name`.
pub fn test_member(name: &str, port: u16) -> Member {
    let addr = format!("127.0.0.1:{port}");
    Member {
        id: Member::id_from_name(&format!("{name}-{addr}")),
        addr,
        rpc: None,
        weight: 1,
    }
}

/// The default test prefix: one per test, so tests sharing an etcd
/// would not see each other.
pub fn test_prefix(test: &str) -> String {
    format!("/citadel-test/{test}/")
}

/// An in-process etcd membership and its stamped events.
pub struct Node {
    pub me: Member,
    pub events: Stamped<MembershipEvent>,
    pub membership: Option<EtcdMembership>,
}

impl Node {
    pub fn start(urls: &[String], prefix: &str, ttl: Duration, me: Member) -> Node {
        let (tx, rx) = crossbeam::channel::unbounded();
        let config = EtcdConfig {
            endpoints: urls.to_vec(),
            prefix: prefix.to_string(),
            lease_ttl: ttl,
            me: me.clone(),
        };
        let membership = EtcdMembership::start(config, tx).expect("register in etcd");
        Node {
            me,
            events: Stamped::forward(rx.into_iter()),
            membership: Some(membership),
        }
    }

    /// The next view that `want` accepts.
    pub fn wait_view(
        &self,
        what: &str,
        mut want: impl FnMut(&MemberView) -> bool,
    ) -> (Instant, MemberView) {
        let (at, event) = self
            .events
            .wait_for(what, |e| matches!(e, MembershipEvent::View(v) if want(v)));
        match event {
            MembershipEvent::View(view) => (at, view),
            MembershipEvent::Isolated { .. } => unreachable!(),
        }
    }

    /// The next `Isolated` event.
    pub fn wait_isolated(&self) -> (Instant, String) {
        let (at, event) = self.events.wait_for("isolation", |e| {
            matches!(e, MembershipEvent::Isolated { .. })
        });
        match event {
            MembershipEvent::Isolated { reason } => (at, reason),
            MembershipEvent::View(_) => unreachable!(),
        }
    }

    /// A clean leave (the lease revoked before this returns).
    pub fn stop(&mut self) {
        if let Some(m) = self.membership.take() {
            m.stop();
        }
    }
}

/// Whether `view` lists a member with `id`.
pub fn has(view: &MemberView, id: &str) -> bool {
    view.members.iter().any(|m| m.id == id)
}

/// A `citadel-member` process: its stdout lines (`view ...`, `isolated
/// ...`) stamped as they arrive; killed on drop.
pub struct MemberProcess {
    pub me: Member,
    pub lines: Stamped<String>,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl MemberProcess {
    /// Starts `citadel-member` for `me` against `urls` (in `ns` if given).
    pub fn start(
        ns: Option<&Netns>,
        urls: &[String],
        prefix: &str,
        ttl: Duration,
        me: Member,
    ) -> MemberProcess {
        let bin = member_bin().display().to_string();
        let mut cmd = match ns {
            Some(ns) => ns.command(&bin),
            None => Command::new(&bin),
        };
        cmd.args([
            "--etcd",
            &urls.join(","),
            "--addr",
            &me.addr,
            "--id",
            &me.id,
        ])
        .args([
            "--prefix",
            prefix,
            "--lease-ttl-ms",
            &ttl.as_millis().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd.spawn().expect("spawn citadel-member");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        MemberProcess {
            me,
            lines: Stamped::forward(stdout.lines().map_while(Result::ok)),
            stdin: child.stdin.take(),
            child,
        }
    }

    /// Whether a `view` line lists member `id`.
    pub fn line_has(line: &str, id: &str) -> bool {
        line.starts_with("view ") && line.split(' ').skip(2).any(|m| m.starts_with(id))
    }

    /// SIGKILL: a crash, the lease left to expire.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A clean leave: closes stdin and waits for the exit.
    pub fn leave(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for MemberProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
