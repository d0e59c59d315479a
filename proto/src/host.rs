//! The server's end of a ring pair: creates the shared memory and eventfds,
//! and builds the command that starts a plugin attached to them.
//!
//! The `HostPair` outlives plugin processes: after a crash the supervisor
//! spawns a new plugin with the same [`plugin_command`], which re-attaches to
//! the same memory and finds its uncommitted requests still there.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use crate::handshake::{Handshake, OutputSpec, PairSpec, RingSource};
use crate::ring::{Consumer, EventFd, LayoutError, Producer, Ring};
use crate::shm::{ShmError, ShmRegion};
use crate::sys;

/// Where ring memory is created.
#[derive(Clone, Debug)]
pub enum Backing {
    /// Anonymous memfds, passed to plugins as inherited descriptors.
    Memfd,
    /// Files `<dir>/<name>.req` and `<dir>/<name>.rep` (e.g. dir = /dev/shm),
    /// passed by path; removed when the `HostPair` is dropped.
    Dir(PathBuf),
}

/// Why a ring pair could not be created.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Shm(#[from] ShmError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("creating eventfd: {0}")]
    Eventfd(std::io::Error),
}

/// The server's end of one ring pair: it produces requests and consumes replies.
#[derive(Debug)]
pub struct HostPair {
    pub requests: Producer,
    pub replies: Consumer,
    spec: PairSpec,
    files: Vec<PathBuf>,
}

impl HostPair {
    /// Creates both rings (capacities: powers of two) and their eventfds.
    pub fn create(
        name: &str,
        request_capacity: u64,
        reply_capacity: u64,
        backing: &Backing,
    ) -> Result<Self, HostError> {
        let mut files = Vec::new();
        let mut make = |suffix: &str, capacity: u64| -> Result<(Ring, RingSource), HostError> {
            let len = Ring::region_len(capacity);
            let (region, source) = match backing {
                Backing::Memfd => {
                    let r = ShmRegion::create_memfd(&format!("citadel-{name}.{suffix}"), len)?;
                    let fd = r.fd().as_raw_fd();
                    (r, RingSource::Fd(fd))
                }
                Backing::Dir(dir) => {
                    let path = dir.join(format!("{name}.{suffix}"));
                    let r = ShmRegion::create_file(&path, len)?;
                    files.push(path.clone());
                    (r, RingSource::Path(path))
                }
            };
            Ok((Ring::init(Arc::new(region), capacity)?, source))
        };
        let (req_ring, req_src) = make("req", request_capacity)?;
        let (rep_ring, rep_src) = make("rep", reply_capacity)?;
        let req_efd = EventFd::new().map_err(HostError::Eventfd)?;
        let rep_efd = EventFd::new().map_err(HostError::Eventfd)?;
        let spec = PairSpec {
            requests: req_src,
            replies: rep_src,
            request_eventfd: req_efd.as_fd().as_raw_fd(),
            reply_eventfd: rep_efd.as_fd().as_raw_fd(),
            outputs: Vec::new(),
        };
        Ok(Self {
            requests: Producer::attach(req_ring, req_efd),
            replies: Consumer::attach(rep_ring, rep_efd),
            spec,
            files,
        })
    }

    /// The pair as a plugin spawned by [`plugin_command`] sees it.
    pub fn spec(&self) -> &PairSpec {
        &self.spec
    }

    /// This pair's request ring as the previous pipeline stage's output
    /// (that stage produces the requests; the server only reads replies).
    pub fn as_output(&self) -> OutputSpec {
        OutputSpec {
            ring: self.spec.requests.clone(),
            eventfd: self.spec.request_eventfd,
        }
    }

    /// Descriptors a plugin that writes into this pair's request ring
    /// (the previous pipeline stage) must inherit.
    pub fn output_fds(&self) -> Vec<RawFd> {
        let mut fds = vec![self.spec.request_eventfd];
        if let RingSource::Fd(fd) = &self.spec.requests {
            fds.push(*fd);
        }
        fds
    }

    /// Descriptors a plugin must inherit for this pair.
    pub fn inherited_fds(&self) -> Vec<RawFd> {
        let mut fds = vec![self.spec.request_eventfd, self.spec.reply_eventfd];
        for src in [&self.spec.requests, &self.spec.replies] {
            if let RingSource::Fd(fd) = src {
                fds.push(*fd);
            }
        }
        fds
    }
}

impl Drop for HostPair {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// A command that starts `program` as a plugin serving `pairs`: the
/// handshake environment is set and the descriptors are inherited at the
/// numbers it names. Spawn it again after a crash to restart the plugin.
pub fn plugin_command(
    program: impl AsRef<OsStr>,
    pairs: &[&HostPair],
    max_attempts: u16,
) -> Command {
    stage_command(program, pairs, &[], max_attempts)
}

/// The handshake's ring pairs of one instance: each pair's spec with the
/// output rings (`outputs[n]`, of the next stage) pair `n` writes to.
pub fn pair_specs(pairs: &[&HostPair], outputs: &[Vec<&HostPair>]) -> Vec<PairSpec> {
    pairs
        .iter()
        .enumerate()
        .map(|(n, p)| PairSpec {
            outputs: outputs
                .get(n)
                .map(|o| o.iter().map(|h| h.as_output()).collect())
                .unwrap_or_default(),
            ..p.spec.clone()
        })
        .collect()
}

/// [`plugin_command`] for a pipeline stage: `outputs[n]` are the pairs
/// (of the next stage) whose request rings pair `n` writes to; empty for
/// the last stage.
pub fn stage_command(
    program: impl AsRef<OsStr>,
    pairs: &[&HostPair],
    outputs: &[Vec<&HostPair>],
    max_attempts: u16,
) -> Command {
    let handshake = Handshake {
        pairs: pair_specs(pairs, outputs),
        max_attempts,
    };
    let mut cmd = Command::new(program);
    for (k, v) in handshake.to_env() {
        cmd.env(k, v);
    }
    // Besides a change of its parent, the plugin watches this pid: a
    // server killed while it spawned the plugin leaves it a first parent
    // (init) that never changes again (`handshake::server_gone`).
    cmd.env(
        crate::handshake::ENV_SERVER_PID,
        std::process::id().to_string(),
    );
    let mut fds: Vec<RawFd> = pairs.iter().flat_map(|p| p.inherited_fds()).collect();
    fds.extend(outputs.iter().flatten().flat_map(|h| h.output_fds()));
    sys::inherit_fds_in_child(&mut cmd, fds);
    cmd
}
