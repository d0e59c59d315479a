//! How a plugin process finds its rings: the environment the supervisor sets.
//!
//! ```text
//! CITADEL_PLUGIN_RINGS       ring pairs separated by ';', each "REQUEST,REPLY";
//!                            a ring is "fd:N" (an inherited memfd/file
//!                            descriptor) or a path (e.g. /dev/shm/citadel-7-0.req)
//! CITADEL_PLUGIN_EVENTFDS    per pair, in the same order, "REQ_EFD,REP_EFD":
//!                            inherited eventfd numbers; the plugin waits on
//!                            REQ_EFD (the server rings it after publishing
//!                            requests) and rings REP_EFD after publishing replies
//! CITADEL_PLUGIN_MAX_ATTEMPTS  deliveries of one request before the plugin
//!                            skips it as poison (default 3)
//! CITADEL_PLUGIN_OUTPUTS     only for a pipeline stage with a next stage: per
//!                            pair, in the same order, the rings it writes its
//!                            output to, separated by '|', each "RING@EFD" (a
//!                            ring as above; EFD: the next stage's eventfd to
//!                            ring after publishing); "" = none
//! CITADEL_PLUGIN_VERSION     informational: the `[[plugin]]` version this
//!                            process runs ("default" without `versions`)
//! CITADEL_PLUGIN_INSTANCE    informational: its index among that version's
//!                            instances (0..instances)
//! CITADEL_PLUGIN_SERVER_PID  the server that started it: a plugin exits
//!                            when it runs no more (`server_gone`)
//! ```
//!
//! Example for a plugin serving two server threads:
//! `CITADEL_PLUGIN_RINGS="fd:3,fd:4;fd:7,fd:8" CITADEL_PLUGIN_EVENTFDS="5,6;9,10"`.
//! Eventfds are always inherited (they have no path). The server keeps its
//! own descriptors, so a restarted plugin gets the same environment and
//! re-attaches to the same ring memory, where its uncommitted requests wait.

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::ring::{Consumer, EventFd, LayoutError, Producer, Ring};
use crate::shm::{ShmError, ShmRegion};
use crate::sys;

pub const ENV_RINGS: &str = "CITADEL_PLUGIN_RINGS";
pub const ENV_EVENTFDS: &str = "CITADEL_PLUGIN_EVENTFDS";
pub const ENV_MAX_ATTEMPTS: &str = "CITADEL_PLUGIN_MAX_ATTEMPTS";
pub const ENV_OUTPUTS: &str = "CITADEL_PLUGIN_OUTPUTS";
pub const ENV_VERSION: &str = "CITADEL_PLUGIN_VERSION";
pub const ENV_INSTANCE: &str = "CITADEL_PLUGIN_INSTANCE";
pub const ENV_SERVER_PID: &str = "CITADEL_PLUGIN_SERVER_PID";

/// Whether the server that started this plugin process is gone, watched
/// from the plugin: its parent changed since `start_parent` (the server
/// died and the plugin was re-parented), or the server named by
/// `CITADEL_PLUGIN_SERVER_PID` runs no more (it died while it spawned the
/// plugin, whose first parent was then already init). A plugin started
/// through a wrapper (a shell) has that as its parent and the server alive.
pub fn server_gone(start_parent: u32) -> bool {
    if std::os::unix::process::parent_id() != start_parent {
        return true;
    }
    std::env::var(ENV_SERVER_PID)
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
}
pub const DEFAULT_MAX_ATTEMPTS: u16 = 3;

/// Where a ring's memory comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RingSource {
    Fd(RawFd),
    Path(PathBuf),
}

/// One (server thread, plugin instance) ring pair as the plugin sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairSpec {
    pub requests: RingSource,
    pub replies: RingSource,
    /// The plugin waits on this one (server -> plugin doorbell).
    pub request_eventfd: RawFd,
    /// The plugin rings this one (plugin -> server doorbell).
    pub reply_eventfd: RawFd,
    /// A pipeline stage's output rings for this pair (the next stage's
    /// request rings); empty for a last stage or a plain plugin.
    pub outputs: Vec<OutputSpec>,
}

/// A ring a pipeline stage produces into (the next stage consumes it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSpec {
    pub ring: RingSource,
    /// The next stage waits on it; the stage rings it after publishing.
    pub eventfd: RawFd,
}

/// Everything a plugin is told at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    pub pairs: Vec<PairSpec>,
    pub max_attempts: u16,
}

/// Why the handshake could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("{0} is not set (is this process started by the Citadel server?)")]
    Missing(&'static str),
    #[error("{var}: cannot parse {value:?}: {reason}")]
    Malformed {
        var: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{ENV_RINGS} has {rings} pairs but {var} has {other}")]
    CountMismatch {
        rings: usize,
        var: &'static str,
        other: usize,
    },
}

/// Why the plugin could not attach to its rings.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("the inherited descriptors were already adopted by this process")]
    AlreadyAttached,
    #[error("inherited descriptor {fd}: {source}")]
    Fd { fd: RawFd, source: std::io::Error },
    #[error(transparent)]
    Shm(#[from] ShmError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// The plugin's end of one ring pair.
#[derive(Debug)]
pub struct PluginEnd {
    pub requests: Consumer,
    pub replies: Producer,
    /// A pipeline stage's output rings (the next stage's instances).
    pub outputs: Vec<Producer>,
}

static ADOPTED: AtomicBool = AtomicBool::new(false);

impl Handshake {
    /// Reads the handshake from this process's environment.
    pub fn from_env() -> Result<Self, HandshakeError> {
        let get = |var| std::env::var(var).map_err(|_| HandshakeError::Missing(var));
        let max = std::env::var(ENV_MAX_ATTEMPTS).ok();
        let mut hs = Self::parse(&get(ENV_RINGS)?, &get(ENV_EVENTFDS)?, max.as_deref())?;
        if let Ok(outputs) = std::env::var(ENV_OUTPUTS) {
            hs.set_outputs(&outputs)?;
        }
        Ok(hs)
    }

    /// Reads `CITADEL_PLUGIN_OUTPUTS` into the pairs.
    pub fn set_outputs(&mut self, value: &str) -> Result<(), HandshakeError> {
        let per_pair: Vec<&str> = value.split(';').collect();
        if per_pair.len() != self.pairs.len() {
            return Err(HandshakeError::CountMismatch {
                rings: self.pairs.len(),
                var: ENV_OUTPUTS,
                other: per_pair.len(),
            });
        }
        for (pair, list) in self.pairs.iter_mut().zip(per_pair) {
            pair.outputs = list
                .split('|')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(|o| {
                    let (ring, efd) = o.rsplit_once('@').ok_or(HandshakeError::Malformed {
                        var: ENV_OUTPUTS,
                        value: o.to_string(),
                        reason: "output without '@'",
                    })?;
                    Ok(OutputSpec {
                        ring: parse_source(ring),
                        eventfd: parse_fd(ENV_OUTPUTS, efd)?,
                    })
                })
                .collect::<Result<_, HandshakeError>>()?;
        }
        Ok(())
    }

    pub fn parse(
        rings: &str,
        eventfds: &str,
        max_attempts: Option<&str>,
    ) -> Result<Self, HandshakeError> {
        let rings: Vec<(RingSource, RingSource)> = split_pairs(ENV_RINGS, rings)?
            .into_iter()
            .map(|(a, b)| (parse_source(a), parse_source(b)))
            .collect();
        let efds = split_pairs(ENV_EVENTFDS, eventfds)?;
        if rings.len() != efds.len() {
            return Err(HandshakeError::CountMismatch {
                rings: rings.len(),
                var: ENV_EVENTFDS,
                other: efds.len(),
            });
        }
        let mut pairs = Vec::with_capacity(rings.len());
        for ((requests, replies), (a, b)) in rings.into_iter().zip(efds) {
            let fd = |s: &str| parse_fd(ENV_EVENTFDS, s);
            pairs.push(PairSpec {
                requests,
                replies,
                request_eventfd: fd(a)?,
                reply_eventfd: fd(b)?,
                outputs: Vec::new(),
            });
        }
        for spec in &pairs {
            for src in [&spec.requests, &spec.replies] {
                if let RingSource::Fd(fd) = src {
                    if *fd < 0 {
                        let value = fd.to_string();
                        return Err(HandshakeError::Malformed {
                            var: ENV_RINGS,
                            value,
                            reason: "negative fd",
                        });
                    }
                }
            }
        }
        let max_attempts = match max_attempts {
            None => DEFAULT_MAX_ATTEMPTS,
            Some(v) => v.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                HandshakeError::Malformed {
                    var: ENV_MAX_ATTEMPTS,
                    value: v.to_string(),
                    reason: "not an integer in 1..=65535",
                }
            })?,
        };
        Ok(Self {
            pairs,
            max_attempts,
        })
    }

    /// The environment variables that describe this handshake.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let src = |s: &RingSource| match s {
            RingSource::Fd(fd) => format!("fd:{fd}"),
            RingSource::Path(p) => p.display().to_string(),
        };
        let rings: Vec<String> = self
            .pairs
            .iter()
            .map(|p| format!("{},{}", src(&p.requests), src(&p.replies)))
            .collect();
        let efds: Vec<String> = self
            .pairs
            .iter()
            .map(|p| format!("{},{}", p.request_eventfd, p.reply_eventfd))
            .collect();
        let mut env = vec![
            (ENV_RINGS, rings.join(";")),
            (ENV_EVENTFDS, efds.join(";")),
            (ENV_MAX_ATTEMPTS, self.max_attempts.to_string()),
        ];
        if self.pairs.iter().any(|p| !p.outputs.is_empty()) {
            let outputs: Vec<String> = self
                .pairs
                .iter()
                .map(|p| {
                    let list: Vec<String> = p
                        .outputs
                        .iter()
                        .map(|o| format!("{}@{}", src(&o.ring), o.eventfd))
                        .collect();
                    list.join("|")
                })
                .collect();
            env.push((ENV_OUTPUTS, outputs.join(";")));
        }
        env
    }

    /// Adopts the inherited descriptors and attaches to every ring pair:
    /// the plugin consumes requests (resuming at the commit cursor) and
    /// produces replies. Allowed once per process.
    pub fn attach(&self) -> Result<Vec<PluginEnd>, AttachError> {
        if ADOPTED.swap(true, Ordering::SeqCst) {
            return Err(AttachError::AlreadyAttached);
        }
        self.pairs.iter().map(attach_pair).collect()
    }

    /// [`Handshake::attach`] for descriptors handed over in-process (an
    /// inline plugin module gets duplicates it owns), without the
    /// once-per-process guard: each serve call owns a fresh set.
    ///
    /// # Safety
    /// Every descriptor this handshake names must be open, owned by the
    /// caller and used by nothing else from now on (they are closed when
    /// the returned ends are dropped).
    pub unsafe fn attach_owned(&self) -> Result<Vec<PluginEnd>, AttachError> {
        self.pairs.iter().map(attach_pair).collect()
    }
}

fn attach_pair(spec: &PairSpec) -> Result<PluginEnd, AttachError> {
    let requests = Ring::attach(Arc::new(open_source(&spec.requests)?))?;
    let replies = Ring::attach(Arc::new(open_source(&spec.replies)?))?;
    let req_efd = EventFd::from_owned(adopt(spec.request_eventfd)?);
    let rep_efd = EventFd::from_owned(adopt(spec.reply_eventfd)?);
    let outputs = spec
        .outputs
        .iter()
        .map(|o| {
            let ring = Ring::attach(Arc::new(open_source(&o.ring)?))?;
            Ok(Producer::attach(
                ring,
                EventFd::from_owned(adopt(o.eventfd)?),
            ))
        })
        .collect::<Result<_, AttachError>>()?;
    Ok(PluginEnd {
        requests: Consumer::attach(requests, req_efd),
        replies: Producer::attach(replies, rep_efd),
        outputs,
    })
}

fn open_source(src: &RingSource) -> Result<ShmRegion, AttachError> {
    match src {
        RingSource::Path(p) => Ok(ShmRegion::open_file(p)?),
        RingSource::Fd(fd) => Ok(ShmRegion::from_fd(adopt(*fd)?)?),
    }
}

fn adopt(fd: RawFd) -> Result<std::os::fd::OwnedFd, AttachError> {
    // SAFETY: the handshake hands these numbers to this process to own;
    // `Handshake::attach` runs once per process (ADOPTED), and the caller of
    // `attach_owned` owns them, so no other owner exists in this process.
    unsafe { sys::adopt_inherited_fd(fd) }.map_err(|source| AttachError::Fd { fd, source })
}

fn split_pairs<'a>(
    var: &'static str,
    value: &'a str,
) -> Result<Vec<(&'a str, &'a str)>, HandshakeError> {
    let malformed = |reason| HandshakeError::Malformed {
        var,
        value: value.to_string(),
        reason,
    };
    if value.trim().is_empty() {
        return Err(malformed("empty"));
    }
    value
        .split(';')
        .map(|pair| {
            pair.split_once(',')
                .map(|(a, b)| (a.trim(), b.trim()))
                .ok_or_else(|| malformed("pair without ','"))
        })
        .collect()
}

fn parse_source(s: &str) -> RingSource {
    match s.strip_prefix("fd:").and_then(|n| n.parse().ok()) {
        Some(fd) => RingSource::Fd(fd),
        None => RingSource::Path(PathBuf::from(s)),
    }
}

fn parse_fd(var: &'static str, s: &str) -> Result<RawFd, HandshakeError> {
    s.parse()
        .ok()
        .filter(|fd: &RawFd| *fd >= 0)
        .ok_or_else(|| HandshakeError::Malformed {
            var,
            value: s.to_string(),
            reason: "not a descriptor number",
        })
}

#[cfg(test)]
mod tests;
