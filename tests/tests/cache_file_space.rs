//! A cache file whose file system cannot hold it (a tmpfs smaller than
//! maxmemory): the server refuses to start, saying so, instead of dying
//! with SIGBUS at the first writes past the room there was (it did: the
//! file was sparse, its pages taken on first write). One that fits fills
//! up and evicts. Mounting the small tmpfs needs root; skipped otherwise.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use citadel_tests::{citadel_bin, free_port, redis, run_to_exit};

/// A tmpfs of `mb` MiB mounted on a temporary directory, unmounted when
/// dropped.
struct SmallTmpfs {
    dir: tempfile::TempDir,
}

impl SmallTmpfs {
    fn mount(mb: u32) -> Option<SmallTmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(SmallTmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Citadel with its cache file at `cache`, its log in `log`.
fn start(cache: &Path, maxmemory: &str, port: u16, log: &Path) -> Child {
    let discovery = log.with_extension("discovery");
    Command::new(citadel_bin())
        .args([
            "--port",
            &port.to_string(),
            "--threads",
            "1",
            "--rpc-port",
            "0",
        ])
        .args(["--maxmemory", maxmemory, "--overload-delay-target-us", "0"])
        .arg("--cache-file")
        .arg(cache)
        .arg("--discovery-dir")
        .arg(discovery)
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .spawn()
        .unwrap()
}

#[test]
fn a_cache_file_too_big_for_its_file_system_is_refused_at_start() {
    let Some(fs) = SmallTmpfs::mount(16) else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let cache = fs.path().join("cache");
    let (port, discovery) = (free_port().to_string(), logs.path().join("discovery"));
    let (status, said) = run_to_exit(&[
        "--port",
        &port,
        "--threads",
        "1",
        "--maxmemory",
        "64mb",
        "--cache-file",
        cache.to_str().unwrap(),
        "--discovery-dir",
        discovery.to_str().unwrap(),
    ]);
    assert!(!status.success(), "{status}: {said}");
    assert!(status.code().is_some(), "an exit, not a signal: {status}");
    assert!(said.contains("has no room for"), "{said}");
    assert!(
        !cache.exists(),
        "the sparse file it made is not left behind"
    );

    // One that fits: written well past its size, it evicts and serves.
    let port = free_port();
    let mut child = start(&cache, "8mb", port, &logs.path().join("fits.log"));
    let url = format!("redis://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut con = loop {
        match redis::Client::open(url.as_str()).unwrap().get_connection() {
            Ok(con) => break con,
            Err(_) if Instant::now() < deadline => {
                assert!(child.try_wait().unwrap().is_none(), "it exited");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("never served: {e}"),
        }
    };
    let value = vec![b'v'; 10_000];
    for i in 0..3_000 {
        let _: () = redis::cmd("SET")
            .arg(i)
            .arg(&value)
            .query(&mut con)
            .unwrap();
    }
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    assert!(child.try_wait().unwrap().is_none(), "it is still running");
    let _ = child.kill();
    let _ = child.wait();
}
