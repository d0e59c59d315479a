//! Network namespaces for partition tests: a namespace per role (deleted
//! on drop), veth links between two namespaces or a namespace and the
//! test's own, and cutting a link the way a real partition looks (packets
//! vanish: `tc netem loss 100%` where the kernel has netem, else both ends
//! taken down) and healing it. Needs root and `ip` (iproute2); check
//! [`unavailable`] first and skip with its message.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A number unique to this test process (for names and subnets).
fn next_id() -> u32 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Why namespaces cannot be used here (not root, no `ip`, no permission),
/// or `None` when they can.
pub fn unavailable() -> Option<String> {
    if effective_uid() != Some(0) {
        return Some("network namespaces need root".into());
    }
    let probe = format!("citadel-probe-{}", std::process::id());
    match Command::new("ip").args(["netns", "add", &probe]).output() {
        Err(e) => Some(format!("no `ip` command: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "`ip netns add` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => {
            run("ip", &["netns", "del", &probe]);
            None
        }
    }
}

/// The effective uid, from `/proc/self/status` (`Uid: real effective ...`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Runs a setup command; panics with its stderr if it fails.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Runs a command, reporting whether it succeeded.
fn try_run(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A named network namespace with its loopback up; deleted on drop
/// (kill the processes started in it first).
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new(role: &str) -> Netns {
        let name = format!("citadel-{role}-{}-{}", std::process::id(), next_id());
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// `ip <args>` inside this namespace; panics on failure.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace also deletes the veth ends inside it.
        let _ = try_run("ip", &["netns", "del", &self.name]);
    }
}

/// One end of a veth link: its device, namespace (`None`: the test's own)
/// and IPv4 address.
pub struct End {
    pub ns: Option<String>,
    pub dev: String,
    pub ip: String,
}

impl End {
    /// `args` prefixed to run in this end's namespace.
    fn cmd<'a>(&'a self, program: &'a str, args: &[&'a str]) -> (String, Vec<&'a str>) {
        match &self.ns {
            None => (program.to_string(), args.to_vec()),
            Some(ns) => {
                let mut all = vec!["netns", "exec", ns.as_str(), program];
                all.extend_from_slice(args);
                ("ip".to_string(), all)
            }
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> bool {
        let (program, args) = self.cmd(program, args);
        try_run(&program, &args)
    }
}

/// How [`Veth::cut`] cut the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// `tc qdisc ... netem loss 100%` on both ends: packets vanish.
    Netem,
    /// No netem in this kernel: both ends set down (packets vanish too;
    /// a local connect fails at once, as with no route).
    LinkDown,
}

/// A veth pair with a /30 subnet; `a` and `b` are its ends.
pub struct Veth {
    pub a: End,
    pub b: End,
    cut: Option<Cut>,
}

impl Veth {
    /// Links namespace `a` to namespace `b` (`None`: the test's own
    /// namespace), addresses both ends and brings them up.
    pub fn new(a: Option<&Netns>, b: Option<&Netns>) -> Veth {
        let id = next_id();
        let pid = std::process::id();
        // 10.<200..=249>.<id>.0/30: unlikely to meet a real network.
        let net = format!("10.{}.{}", 200 + pid % 50, id % 256);
        let tag = format!("{}{}", pid % 100_000, id);
        let end = |ns: Option<&Netns>, side: &str, host: u8| End {
            ns: ns.map(|n| n.name().to_string()),
            dev: format!("cv{side}{tag}"),
            ip: format!("{net}.{host}"),
        };
        let veth = Veth {
            a: end(a, "a", 1),
            b: end(b, "b", 2),
            cut: None,
        };
        run(
            "ip",
            &[
                "link",
                "add",
                &veth.a.dev,
                "type",
                "veth",
                "peer",
                "name",
                &veth.b.dev,
            ],
        );
        for end in [&veth.a, &veth.b] {
            if let Some(ns) = &end.ns {
                run("ip", &["link", "set", &end.dev, "netns", ns]);
            }
            let cidr = format!("{}/30", end.ip);
            assert!(
                end.run("ip", &["addr", "add", &cidr, "dev", &end.dev]),
                "address {cidr}"
            );
            assert!(
                end.run("ip", &["link", "set", &end.dev, "up"]),
                "{} up",
                end.dev
            );
        }
        veth
    }

    /// Cuts the link both ways.
    pub fn cut(&mut self) -> Cut {
        let netem = |end: &End| {
            end.run(
                "tc",
                &[
                    "qdisc", "add", "dev", &end.dev, "root", "netem", "loss", "100%",
                ],
            )
        };
        let how = if netem(&self.a) && netem(&self.b) {
            Cut::Netem
        } else {
            for end in [&self.a, &self.b] {
                end.run("tc", &["qdisc", "del", "dev", &end.dev, "root"]);
                assert!(
                    end.run("ip", &["link", "set", &end.dev, "down"]),
                    "{} down",
                    end.dev
                );
            }
            Cut::LinkDown
        };
        self.cut = Some(how);
        how
    }

    /// Undoes [`cut`](Self::cut).
    pub fn heal(&mut self) {
        match self.cut.take() {
            Some(Cut::Netem) => {
                for end in [&self.a, &self.b] {
                    assert!(end.run("tc", &["qdisc", "del", "dev", &end.dev, "root"]));
                }
            }
            Some(Cut::LinkDown) => {
                for end in [&self.a, &self.b] {
                    assert!(
                        end.run("ip", &["link", "set", &end.dev, "up"]),
                        "{} up",
                        end.dev
                    );
                }
            }
            None => {}
        }
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting one end deletes the pair (gone already if its
        // namespace was deleted first).
        self.a.run("ip", &["link", "del", &self.a.dev]);
    }
}
