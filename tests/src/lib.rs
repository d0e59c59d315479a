//! Helpers for the end-to-end tests in tests/tests/: find (or build) the
//! `citadel` binary and run it on a free port with a private cache file,
//! under a guard that kills it on drop, also when a test panics.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use redis;
pub use redis_protocol::resp2::types::OwnedFrame as Frame;

pub mod clients;
pub mod cluster;
pub mod differential;
pub mod etcd;
pub mod netns;
pub mod pinger;
pub mod pipelines;
pub mod plugin_rig;
pub mod postgres;
pub mod reference;
pub mod rpc;
pub mod rpc_client;

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Path of an up-to-date release `citadel` binary. `$CITADEL_BIN` wins;
/// otherwise `cargo build --release --workspace --bins` runs
/// once per test process (a no-op when tests/run.sh already built it).
pub fn citadel_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| release_bin("CITADEL_BIN", "citadel"))
}

/// Path of `citadel-top` (`server/top`, release build; `$CITADEL_TOP_BIN`
/// wins), built like [`citadel_bin`].
pub fn citadel_top_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| release_bin("CITADEL_TOP_BIN", "citadel-top"))
}

/// Path of the example plugin `plugins/examples/echo` (release build;
/// `$CITADEL_ECHO_PLUGIN` wins), built like [`citadel_bin`].
pub fn echo_plugin_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| release_bin("CITADEL_ECHO_PLUGIN", "citadel-plugin-echo"))
}

/// Path of the PostgreSQL loader plugin (`plugins/loader-postgres`, release
/// build; `$CITADEL_LOADER_POSTGRES` wins), built like [`citadel_bin`].
pub fn loader_postgres_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| release_bin("CITADEL_LOADER_POSTGRES", "citadel-loader-postgres"))
}

/// Path of the fake loader plugin (`plugins/examples/fake-loader`, release
/// build; `$CITADEL_FAKE_LOADER` wins), built like [`citadel_bin`].
pub fn fake_loader_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| release_bin("CITADEL_FAKE_LOADER", "citadel-fake-loader"))
}

/// Path of the text pipeline stages (`plugins/examples/text-stages`,
/// release build; `$CITADEL_TEXT_STAGE` wins), built like [`citadel_bin`].
pub fn text_stage_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| release_bin("CITADEL_TEXT_STAGE", "citadel-text-stage"))
}

/// Path of the media stage (`plugins/media-ffmpeg`, release build;
/// `$CITADEL_MEDIA_STAGE` wins), built like [`citadel_bin`].
pub fn media_stage_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| release_bin("CITADEL_MEDIA_STAGE", "citadel-media-ffmpeg"))
}

/// Path of the OCR stage (`plugins/infer-onnx`, release build;
/// `$CITADEL_OCR_STAGE` wins), built like [`citadel_bin`].
pub fn ocr_stage_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| release_bin("CITADEL_OCR_STAGE", "citadel-infer-onnx"))
}

/// `$env_override`, or the workspace's release build of `bin`. The whole
/// workspace is built (a no-op after `tests/run.sh`'s build): building one
/// package alone would unify dependency features differently and rebuild
/// them (tokio, for one) for minutes.
pub(crate) fn release_bin(env_override: &str, bin: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_override) {
        return PathBuf::from(path);
    }
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        // --lib too: the example plugins' inline modules (cdylibs), which
        // building the binaries alone does not link.
        .args(["build", "--release", "--workspace", "--bins", "--lib"])
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building {bin} failed");
    let path = target.join("release").join(bin);
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

/// A port nothing listens on right now, below the kernel's ephemeral range
/// (32768 and up by default): a port the kernel hands out for `bind(0)`
/// may be taken by any client socket's local end before the server binds
/// it ("Address already in use"); these are only ever bound on purpose.
/// Each test process walks its own stride of the range, from a start
/// derived from its pid, so concurrent processes rarely meet.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(2_654_435_761) % SPAN;
    for _ in 0..SPAN {
        // ORDERING: Relaxed: a counter; only uniqueness matters.
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (start + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + SPAN)
}

/// A running `citadel` child process; killed (SIGKILL) on drop.
pub struct Server {
    pub port: u16,
    /// The RPC front door's TCP port (0: none).
    pub rpc_port: u16,
    pub args: Vec<String>,
    /// The address its RESP port is reached at from the test.
    pub host: String,
    /// The network namespace it runs in (`None`: the test's own).
    netns: Option<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    starts: usize,
}

impl Server {
    /// Starts citadel on a free port with a private cache file, 2 threads
    /// (unless `extra` says `--threads`) and
    /// 64 MiB of cache, plus `extra` flags; waits until it answers.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_on(free_port(), extra)
    }

    /// As [`Server::start`], on `port` (chosen beforehand, e.g. by
    /// [`free_port`], when other servers must know it).
    pub fn start_on(port: u16, extra: &[&str]) -> Server {
        Server::launch(None, "127.0.0.1", port, extra)
    }

    /// As [`Server::start_on`], inside network namespace `ns`, listening
    /// on `host` (an address of `ns` the test reaches, e.g. a veth end):
    /// a non-loopback bind needs a password, so `extra` must hold
    /// `--requirepass`.
    pub fn start_in(ns: &netns::Netns, host: &str, port: u16, extra: &[&str]) -> Server {
        let mut all = vec!["--bind", host];
        all.extend_from_slice(extra);
        Server::launch(Some(ns.name().to_string()), host, port, &all)
    }

    fn launch(netns: Option<String>, host: &str, port: u16, extra: &[&str]) -> Server {
        let dir = if Path::new("/dev/shm").is_dir() {
            tempfile::Builder::new()
                .prefix("citadel-test")
                .tempdir_in("/dev/shm")
        } else {
            tempfile::Builder::new().prefix("citadel-test").tempdir()
        }
        .unwrap();
        let given_rpc = extra.iter().position(|a| *a == "--rpc-port");
        let rpc_port = match given_rpc {
            Some(i) => extra.get(i + 1).and_then(|p| p.parse().ok()).unwrap_or(0),
            None => free_port(),
        };
        let cache = dir.path().join("cache");
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--cache-file".into(),
            cache.display().to_string(),
        ];
        if !extra.contains(&"--threads") {
            args.extend(["--threads".into(), "2".into()]);
        }
        if !extra.contains(&"--discovery-dir") {
            args.extend([
                "--discovery-dir".into(),
                dir.path().join("discovery").display().to_string(),
            ]);
        }
        if !extra.contains(&"--maxmemory") {
            args.extend(["--maxmemory".into(), "64mb".into()]);
        }
        if !extra.contains(&"--overload-delay-target-us") {
            // Core admission off: tests share two cores, where preemption
            // stretches a turn's wall time far past the 5 ms default and
            // a test would see -OVERLOAD where it checks something else.
            // `tests/overload.rs` sets the target it tests.
            args.extend(["--overload-delay-target-us".into(), "0".into()]);
        }
        if given_rpc.is_none() {
            args.extend(["--rpc-port".into(), rpc_port.to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut server = Server {
            port,
            rpc_port,
            args,
            host: host.to_string(),
            netns,
            dir,
            child: None,
            starts: 0,
        };
        server.spawn();
        server.wait_ready();
        server
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).unwrap();
        let mut command = match &self.netns {
            None => Command::new(citadel_bin()),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(citadel_bin());
                c
            }
        };
        let child = command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn citadel");
        self.child = Some(child);
    }

    fn log_path(&self, start: usize) -> PathBuf {
        self.dir.path().join(format!("log.{start}"))
    }

    /// The output of the current (latest) run.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default()
    }

    pub fn cache_file(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The discovery directory this server writes its record into.
    pub fn discovery_dir(&self) -> PathBuf {
        let given = self.args.iter().rposition(|a| a == "--discovery-dir");
        given.map_or_else(
            || self.dir.path().join("discovery"),
            |i| PathBuf::from(&self.args[i + 1]),
        )
    }

    /// Waits for this server's discovery record (written just after it starts
    /// answering, through a hidden temporary file) and returns its text.
    pub fn wait_for_record(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let dir = self.discovery_dir();
        loop {
            let record = std::fs::read_dir(&dir).ok().and_then(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".server"))
                    .find_map(|e| std::fs::read_to_string(e.path()).ok())
            });
            if let Some(text) = record {
                return text;
            }
            assert!(Instant::now() < deadline, "no discovery record in {dir:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the server accepts connections (panics with its log if it exits).
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("citadel exited during startup ({status}):\n{}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect((self.host.as_str(), self.port)) {
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = [0u8; 64];
                if s.write_all(b"PING\r\n").is_ok()
                    && matches!(s.read(&mut buf), Ok(n) if n > 0)
                    && self.answered_by_child()
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "citadel did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server answering on our port is our child, not another
    /// process's server that took the port between `free_port`'s probe
    /// and our bind (test binaries of other worktrees run at once, with
    /// the same key names and values): our child then exits on the failed
    /// bind and `wait_ready` says so, instead of the test silently talking
    /// to a stranger. Unknown (a password, a namespace): assumed ours.
    fn answered_by_child(&self) -> bool {
        let Some(child) = self.child.as_ref().map(Child::id) else {
            return true;
        };
        if self.netns.is_some() {
            return true;
        }
        let pid = redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
            .and_then(|mut con| redis::cmd("INFO").arg("server").query::<String>(&mut con))
            .ok()
            .and_then(|info| {
                let line = info.lines().find_map(|l| l.strip_prefix("process_id:"))?;
                line.trim().parse::<u32>().ok()
            });
        pid.is_none_or(|pid| pid == child)
    }

    pub fn url(&self) -> String {
        format!("redis://{}:{}/", self.host, self.port)
    }

    pub fn client(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).unwrap();
        let con = client
            .get_connection_with_timeout(Duration::from_secs(10))
            .unwrap();
        con.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        con
    }

    /// A raw socket to the server with a read timeout.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect((self.host.as_str(), self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Sends a signal by name (`"TERM"`, `"INT"`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit (panics after `timeout`).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("server running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "citadel did not exit in time:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, then wait.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same server again (same port, cache file and flags),
    /// replacing `--fresh` as `fresh` says.
    pub fn restart(&mut self, fresh: bool) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        self.args.retain(|a| a != "--fresh");
        if fresh {
            self.args.push("--fresh".into());
        }
        self.spawn();
        self.wait_ready();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("--- citadel log (port {}) ---\n{}", self.port, self.log());
        }
    }
}

/// Runs citadel with `args` expecting it to exit by itself; returns its
/// status and combined output (killed after 20 s).
pub fn run_to_exit(args: &[&str]) -> (ExitStatus, String) {
    let out_file = tempfile::NamedTempFile::new().unwrap();
    // No RPC listener unless asked: its default port (port + 1000) could
    // be another test's.
    let no_rpc: &[&str] = if args.contains(&"--rpc-port") {
        &[]
    } else {
        &["--rpc-port", "0"]
    };
    // A cache file of its own unless asked: a start that fails after the
    // cache opened (a bad plugin, say) would otherwise leave the default
    // /dev/shm/citadel-<port>.cache (and its side files) behind.
    let cache_dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let cache = cache_dir.path().join("cache").display().to_string();
    let own_cache: Vec<&str> = if args.contains(&"--cache-file") {
        Vec::new()
    } else {
        vec!["--cache-file", &cache]
    };
    let mut child = Command::new(citadel_bin())
        .args(args)
        .args(no_rpc)
        .args(&own_cache)
        .stdin(Stdio::null())
        .stdout(out_file.reopen().unwrap())
        .stderr(out_file.reopen().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("citadel {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, std::fs::read_to_string(out_file.path()).unwrap())
}

/// Everything `s` sends until it has been quiet for `quiet` (its read
/// timeout stays set to `quiet`).
pub fn read_until_quiet(s: &mut TcpStream, quiet: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(quiet)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16 << 10];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Reads from `s` until `want` bytes arrived (or the timeout/EOF hits).
pub fn read_n(s: &mut TcpStream, want: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(want.min(64 << 20));
    let mut buf = vec![0u8; 64 << 10];
    while got.len() < want {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// Reads one reply line (up to and including `\r\n`).
pub fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match s.read(&mut b) {
            Ok(1) => line.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Reads RESP2 replies off a raw connection, decoded by `redis-protocol`
/// (the tests' reference decoder, independent of Citadel's encoder).
pub struct RespReader {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RespReader {
    pub fn new(stream: TcpStream) -> RespReader {
        RespReader {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads give up after `timeout` (`raw_reply` then answers None).
    pub fn set_read_timeout(&self, timeout: Option<std::time::Duration>) {
        self.stream.set_read_timeout(timeout).unwrap();
    }

    /// Every reply (push, message) that arrives within `wait` of the last,
    /// as text; reads block again afterwards.
    pub fn pending(&mut self, wait: std::time::Duration) -> Vec<String> {
        self.set_read_timeout(Some(wait));
        let mut got = Vec::new();
        while let Some(m) = self.raw_reply() {
            got.push(String::from_utf8_lossy(&m).into_owned());
        }
        self.set_read_timeout(None);
        got
    }

    /// As [`RespReader::pending`], for when another server's messages say
    /// how many to expect: reads until `expected` arrived (waiting up to
    /// `cap` for each), then whatever more comes within `settle` (so an
    /// extra message still shows), instead of a long quiet wait every time.
    pub fn pending_like(
        &mut self,
        expected: usize,
        cap: std::time::Duration,
        settle: std::time::Duration,
    ) -> Vec<String> {
        self.set_read_timeout(Some(cap));
        let mut got = Vec::new();
        while got.len() < expected {
            match self.raw_reply() {
                Some(m) => got.push(String::from_utf8_lossy(&m).into_owned()),
                None => break,
            }
        }
        got.extend(self.pending(settle));
        got
    }

    /// The next reply's bytes exactly as the server sent them (byte-for-byte
    /// comparisons); None once the server closed the connection.
    pub fn raw_reply(&mut self) -> Option<Vec<u8>> {
        let mut chunk = [0u8; 16 << 10];
        loop {
            // RESP2 first; a RESP3 connection's maps, sets, nulls and pushes
            // need the RESP3 decoder.
            let used = match redis_protocol::resp2::decode::decode(&self.buf) {
                Ok(found) => found.map(|(_, used)| used),
                Err(e) => match redis_protocol::resp3::decode::complete::decode(&self.buf) {
                    Ok(found) => found.map(|(_, used)| used),
                    Err(_) => panic!("invalid RESP from the server: {e:?} in {:?}", self.buf),
                },
            };
            if let Some(used) = used {
                return Some(self.buf.drain(..used).collect());
            }
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next reply; None once the server closed the connection.
    /// Panics on bytes that are not RESP2 (the server must never send any).
    pub fn reply(&mut self) -> Option<Frame> {
        let raw = self.raw_reply()?;
        match redis_protocol::resp2::decode::decode(&raw) {
            Ok(Some((frame, _))) => Some(frame),
            other => panic!("a framed reply does not decode: {other:?}"),
        }
    }
}
