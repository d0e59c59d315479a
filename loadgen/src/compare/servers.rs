//! Starting the servers under comparison: free 127.0.0.1 ports, pinned to one core, killed
//! with the harness (drop guard, and PR_SET_PDEATHSIG if the harness itself is killed).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{CompareArgs, ServerKind};
use crate::error::LoadgenError;
use crate::protocol::ProtocolKind;

const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A server process we started; stopped (SIGKILL, reaped) when dropped.
#[derive(Debug)]
pub struct RunningServer {
    pub kind: ServerKind,
    pub addr: SocketAddr,
    pub protocol: ProtocolKind,
    child: Child,
    scratch: Option<PathBuf>,
}

impl RunningServer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(p) = &self.scratch {
            let _ = std::fs::remove_file(p);
        }
        tracing::info!(server = self.kind.name(), "stopped");
    }
}

/// Starts `kind`; `Ok(None)` when it should be left out (citadel absent or not answering).
pub fn start(kind: ServerKind, args: &CompareArgs) -> Result<Option<RunningServer>, LoadgenError> {
    let port = free_port().map_err(|e| start_error(kind, format!("no free port: {e}")))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let threads = args.server_threads.to_string();
    let mut scratch = None;
    let (program, argv, protocol): (PathBuf, Vec<String>, ProtocolKind) = match kind {
        ServerKind::Citadel => {
            if !args.citadel.is_file() {
                eprintln!("compare: {} not found; citadel left out (build it with cargo build --release -p citadel-server)", args.citadel.display());
                return Ok(None);
            }
            let cache = args.out_dir.join(format!("citadel-{port}.cache"));
            scratch = Some(cache.clone());
            let argv = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--threads",
                &threads,
                "--maxmemory",
                "256mb",
                "--cache-file",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([cache.display().to_string(), "--fresh".into()])
            .collect();
            (args.citadel.clone(), argv, ProtocolKind::Resp)
        }
        ServerKind::Redis => {
            let argv = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory",
                "256mb",
            ];
            (
                ensure_installed("redis-server", "redis-server")?,
                argv.map(String::from).to_vec(),
                ProtocolKind::Resp,
            )
        }
        ServerKind::Memcached => {
            let mut argv: Vec<String> = [
                "-p",
                &port.to_string(),
                "-l",
                "127.0.0.1",
                "-U",
                "0",
                "-t",
                &threads,
                "-m",
                "256",
            ]
            .map(String::from)
            .to_vec();
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                argv.extend(["-u".into(), "root".into()]);
            }
            let protocol = if args.memcache_binary {
                ProtocolKind::MemcacheBinary
            } else {
                ProtocolKind::Memcache
            };
            (ensure_installed("memcached", "memcached")?, argv, protocol)
        }
    };
    let log = std::fs::File::create(args.out_dir.join(format!("{}.log", kind.name())))
        .map_err(|e| start_error(kind, format!("log file: {e}")))?;
    let mut cmd = Command::new(&program);
    cmd.args(&argv)
        .stdin(Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(|e| start_error(kind, e.to_string()))?,
        )
        .stderr(log);
    let cpu = args.server_cpu;
    // SAFETY: runs in the forked child before exec; it only makes two async-signal-safe
    // syscalls on memory owned by this closure's stack.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| start_error(kind, format!("{}: {e}", program.display())))?;
    let server = RunningServer {
        kind,
        addr,
        protocol,
        child,
        scratch,
    };
    match wait_ready(addr, protocol) {
        Ok(()) => {
            tracing::info!(server = kind.name(), %addr, pid = server.pid(), "started");
            Ok(Some(server))
        }
        Err(why) if kind == ServerKind::Citadel => {
            eprintln!("compare: citadel does not answer PING ({why}); left out");
            Ok(None)
        }
        Err(why) => Err(start_error(kind, why)),
    }
}

fn start_error(kind: ServerKind, reason: String) -> LoadgenError {
    LoadgenError::ServerStart {
        server: kind.name(),
        reason,
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Finds `bin` on PATH, installing Debian package `pkg` first when it is missing and we
/// are root.
fn ensure_installed(bin: &str, pkg: &str) -> Result<PathBuf, LoadgenError> {
    if let Some(p) = which(bin) {
        return Ok(p);
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root && which("apt-get").is_some() {
        eprintln!("compare: {bin} missing; installing Debian package {pkg}");
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "-q", pkg])
                .status()
        };
        let ok = install().map(|s| s.success()).unwrap_or(false)
            || (Command::new("apt-get")
                .args(["update", "-q"])
                .status()
                .is_ok()
                && install().map(|s| s.success()).unwrap_or(false));
        if ok {
            if let Some(p) = which(bin) {
                return Ok(p);
            }
        }
    }
    Err(LoadgenError::ServerStart {
        server: if bin == "memcached" {
            "memcached"
        } else {
            "redis"
        },
        reason: format!("{bin} not found and could not be installed (apt-get install {pkg})"),
    })
}

fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Polls until the server answers PING (RESP) or `version` (memcache).
fn wait_ready(addr: SocketAddr, protocol: ProtocolKind) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match probe(addr, protocol) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("not ready after {READY_TIMEOUT:?}: {last}"))
}

fn probe(addr: SocketAddr, protocol: ProtocolKind) -> Result<(), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    let (req, want): (&[u8], &[u8]) = match protocol {
        ProtocolKind::Resp => (b"*1\r\n$4\r\nPING\r\n", b"+PONG"),
        // The binary protocol is negotiated per connection in memcached; text works too.
        ProtocolKind::Memcache | ProtocolKind::MemcacheBinary => (b"version\r\n", b"VERSION"),
        // The harness starts every server on its RESP or memcache port.
        ProtocolKind::Rpc => return Err("compare does not probe RPC".into()),
    };
    s.write_all(req).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).map_err(|e| e.to_string())?;
    if buf[..n].starts_with(want) {
        Ok(())
    } else {
        Err(format!(
            "unexpected reply {:?}",
            String::from_utf8_lossy(&buf[..n])
        ))
    }
}
