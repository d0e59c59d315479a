//! A private PostgreSQL server for tests: Debian's binaries
//! (`/usr/lib/postgresql/*/bin`, or `$CITADEL_PG_BIN`), a fresh cluster in a
//! temporary directory, listening on 127.0.0.1 only on a free port (its Unix
//! socket in the same directory), with the loader's table and trigger
//! (`deploy/examples/postgres-loader.sql`) and a query counter.
//!
//! PostgreSQL refuses to run as root: as root the cluster is created and run
//! as the `postgres` user (made by Debian's package), else `nobody`. The
//! server can be stopped and started again (same port, same data), and is
//! shut down when the guard drops, also when a test panics.
//!
//! Counting queries on the database side: a loader configured with
//! [`COUNTED_QUERY`] calls `load_kv(key)`, which bumps the sequence
//! `kv_loads` (non-transactional, no lock contention) before it selects the
//! row; [`Postgres::load_count`] reads it.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// The superuser the tests connect as (trust authentication, loopback only).
pub const USER: &str = "citadel";
pub const DATABASE: &str = "postgres";
/// The channel the example trigger notifies.
pub const CHANNEL: &str = "citadel_invalidate";
/// A load query that counts its calls (see [`Postgres::load_count`]).
pub const COUNTED_QUERY: &str = "SELECT v FROM load_kv($1)";

/// The example schema, as deployed.
const SCHEMA: &str = include_str!("../../deploy/examples/postgres-loader.sql");
const COUNTER: &str = "
CREATE SEQUENCE kv_loads;
CREATE FUNCTION load_kv(key text) RETURNS TABLE (v bytea) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('kv_loads');
    RETURN QUERY SELECT kv.v FROM kv WHERE kv.k = key;
END
$$;
";

/// The directory with Debian's `initdb`, `postgres` and `psql` (the newest
/// version installed), or `$CITADEL_PG_BIN`.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CITADEL_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A running (or stopped) private PostgreSQL server.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// `(uid, gid)` to run the server as, when this process is root.
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
    starts: usize,
}

impl Postgres {
    /// Creates a cluster, starts it, and creates the loader's schema.
    pub fn start() -> Postgres {
        let bin = bin_dir().expect(
            "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin \
             (apt-get install postgresql; tests/run.sh does) or $CITADEL_PG_BIN",
        );
        let dir = tempfile::Builder::new()
            .prefix("citadel-pg")
            .tempdir()
            .unwrap();
        let run_as = if current_uid() == 0 {
            let ids = system_user("postgres")
                .or_else(|| system_user("nobody"))
                .expect("running as root and no postgres or nobody user to run PostgreSQL as");
            std::os::unix::fs::chown(dir.path(), Some(ids.0), Some(ids.1)).unwrap();
            Some(ids)
        } else {
            None
        };
        let mut pg = Postgres {
            bin,
            dir,
            port: free_port(),
            run_as,
            child: None,
            starts: 0,
        };
        pg.initdb();
        pg.start_again();
        pg.sql(SCHEMA);
        pg.sql(COUNTER);
        pg
    }

    /// A libpq connection string for the loader.
    pub fn dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} dbname={DATABASE}",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Runs SQL (any number of statements) with psql; returns its output
    /// (unaligned, tuples only, trimmed). Panics with psql's error.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|e| panic!("psql failed: {e}\nSQL: {sql}"))
    }

    /// Like [`Postgres::sql`], returning psql's error text instead of panicking.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        let mut child = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args(["-p", &self.port.to_string(), "-U", USER, "-d", DATABASE])
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run psql");
        // A psql that could not connect (the server still starting, a
        // readiness probe) exits before reading its input: the broken pipe
        // is not the error, its exit status and message are.
        let _ = child.stdin.take().unwrap().write_all(sql.as_bytes());
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Sets `key` to `value` (insert or update, one transaction: the
    /// trigger notifies at commit).
    pub fn put(&self, key: &str, value: &[u8]) {
        self.sql(&format!(
            "INSERT INTO kv (k, v) VALUES ({}, {}) \
             ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;",
            literal(key),
            bytea(value)
        ));
    }

    /// Calls of `load_kv` so far (queries that reached the database through
    /// [`COUNTED_QUERY`]).
    pub fn load_count(&self) -> u64 {
        self.sql("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM kv_loads;")
            .parse()
            .unwrap()
    }

    /// Fast shutdown (clients are disconnected); waits until it is down.
    pub fn stop(&mut self) {
        self.shut_down("INT", Duration::from_secs(30));
    }

    /// Starts the server (again) on the same port and data; waits until it
    /// accepts queries.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "PostgreSQL is already running");
        self.starts += 1;
        let log = std::fs::File::create(self.log_path()).unwrap();
        let socket_dir = self.dir.path().display().to_string();
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", &format!("unix_socket_directories={socket_dir}")])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=100"])
            .args(["-c", "shared_buffers=16MB", "-c", "huge_pages=off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("spawn postgres"));
        self.wait_ready();
    }

    /// The server's log of its latest start.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn initdb(&self) {
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-N",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A command for one of the server binaries, as the server's user.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(self.dir.path()).env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::process::CommandExt::uid(&mut cmd, uid);
            std::os::unix::process::CommandExt::gid(&mut cmd, gid);
        }
        cmd
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("postgres exited during startup ({status}):\n{}", self.log());
            }
            match self.try_sql("SELECT 1;") {
                Ok(_) => return,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "postgres did not start: {e}\n{}",
                    self.log()
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` (INT: fast shutdown, QUIT: immediate) and waits;
    /// SIGKILL after `patience`.
    fn shut_down(&mut self, signal: &str, patience: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status();
        let deadline = Instant::now() + patience;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("postgres.log.{}", self.starts))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- postgres log (port {}) ---\n{}", self.port, self.log());
        }
        self.shut_down("QUIT", Duration::from_secs(10));
    }
}

/// `s` as an SQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `bytes` as an SQL bytea literal.
pub fn bytea(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("'\\x{hex}'::bytea")
}

/// The effective uid of this process (the owner of /proc/self).
fn current_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// `(uid, gid)` of a user in /etc/passwd.
fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string(Path::new("/etc/passwd")).ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_escaped() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(bytea(b"\x00hi"), "'\\x006869'::bytea");
    }
}
