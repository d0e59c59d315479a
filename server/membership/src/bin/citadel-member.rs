//! `citadel-member`: joins a cluster's etcd membership, or watches a
//! discovery directory's, and prints each membership event on a line:
//!
//! ```text
//! view <revision> <id>@<addr> <id>@<addr> ...
//! isolated <reason>
//! ```
//!
//! It leaves cleanly (revoking its lease, so the others drop it at once)
//! when its standard input closes; killed, it drops out when its lease
//! expires. Logs go to stderr (`RUST_LOG`).
//!
//! ```text
//! citadel-member --etcd http://127.0.0.1:2379 --addr 10.0.0.5:6379
//!                [--rpc HOST:PORT] [--weight N] [--id HEX40]
//!                [--prefix /citadel/] [--lease-ttl-ms 5000]
//! citadel-member --discovery-dir DIR
//! ```

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use citadel_membership::etcd::{split_list, DEFAULT_PREFIX};
use citadel_membership::{
    directory, DirectoryConfig, DirectoryMembership, EtcdConfig, EtcdMembership, Member,
    MembershipEvent,
};
use crossbeam::channel;

const USAGE: &str = "usage: citadel-member --etcd URLS --addr HOST:PORT [--rpc HOST:PORT] \
[--weight N] [--id HEX40] [--prefix P] [--lease-ttl-ms MS]\n       citadel-member --discovery-dir DIR";

enum Source {
    Etcd(EtcdConfig),
    Directory(DirectoryConfig),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let source = match parse_args(std::env::args().skip(1).collect()) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("citadel-member: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let (events, received) = channel::unbounded();
    let running: Box<dyn FnOnce()> = match source {
        Source::Etcd(config) => match EtcdMembership::start(config, events) {
            Ok(m) => Box::new(move || m.stop()),
            Err(e) => fail(&e),
        },
        Source::Directory(config) => match DirectoryMembership::start(config, events) {
            Ok(m) => Box::new(move || m.stop()),
            Err(e) => fail(&e),
        },
    };
    let (quit, stdin_closed) = channel::bounded::<()>(1);
    std::thread::spawn(move || {
        // Any outcome (EOF or an error) means nobody drives this any more.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = quit.send(());
    });
    loop {
        channel::select! {
            recv(received) -> event => match event {
                Ok(event) => println!("{}", line(&event)),
                Err(_) => break,
            },
            recv(stdin_closed) -> _ => break,
        }
    }
    running();
}

fn fail(e: &dyn std::fmt::Display) -> ! {
    eprintln!("citadel-member: {e}");
    std::process::exit(1);
}

fn line(event: &MembershipEvent) -> String {
    match event {
        MembershipEvent::View(view) => {
            let mut out = format!("view {}", view.revision);
            for m in &view.members {
                out.push_str(&format!(" {}@{}", m.id, m.addr));
            }
            out
        }
        MembershipEvent::Isolated { reason } => format!("isolated {reason}"),
    }
}

fn parse_args(args: Vec<String>) -> Result<Source, String> {
    let mut flags = std::collections::HashMap::new();
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag:?}"))?
            .to_string();
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        flags.insert(name, value);
    }
    let mut take = |name: &str| flags.remove(name);
    let source = if let Some(dir) = take("discovery-dir") {
        Source::Directory(DirectoryConfig {
            dir: PathBuf::from(dir),
            poll_interval: directory::DEFAULT_POLL,
        })
    } else {
        let endpoints = split_list(&take("etcd").ok_or("--etcd or --discovery-dir is required")?);
        let addr = take("addr").ok_or("--addr is required with --etcd")?;
        let weight = match take("weight") {
            None => 1,
            Some(w) => w
                .parse()
                .map_err(|_| format!("--weight {w:?} is not a number"))?,
        };
        let lease_ttl = match take("lease-ttl-ms") {
            None => Duration::from_secs(5),
            Some(ms) => Duration::from_millis(
                ms.parse()
                    .map_err(|_| format!("--lease-ttl-ms {ms:?} is not a number"))?,
            ),
        };
        Source::Etcd(EtcdConfig {
            endpoints,
            prefix: take("prefix").unwrap_or_else(|| DEFAULT_PREFIX.to_string()),
            lease_ttl,
            me: Member {
                id: take("id").unwrap_or_else(|| Member::id_from_name(&addr)),
                rpc: take("rpc"),
                addr,
                weight,
            },
        })
    };
    match flags.keys().next() {
        Some(unknown) => Err(format!("unknown flag --{unknown}")),
        None => Ok(source),
    }
}
