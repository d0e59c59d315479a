//! io_uring setup and the startup probe that says exactly what is missing
//! when the kernel (or a seccomp policy, or a sysctl) denies what we need.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use io_uring::{cqueue, opcode, types, IoUring, Probe};

use super::bufring::BufRing;
use super::NetError;

/// Submission queue entries per ring; completions get four times as many.
pub const SQ_ENTRIES: u32 = 1024;

/// Creates a ring for one server thread with the cheapest completion mode the
/// kernel supports: single issuer + deferred task work (Linux 6.1), else
/// cooperative task work (5.19), else defaults.
pub fn create() -> Result<IoUring, NetError> {
    let cq = SQ_ENTRIES * 4;
    let attempts: [fn(&mut io_uring::Builder) -> &mut io_uring::Builder; 3] = [
        |b| {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_submit_all()
        },
        |b| b.setup_coop_taskrun().setup_submit_all(),
        |b| b,
    ];
    let mut last = None;
    for setup in attempts {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(cq);
        match setup(&mut builder).build(SQ_ENTRIES) {
            Ok(ring) => return Ok(ring),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) => return Err(unavailable(e)),
        }
    }
    Err(unavailable(last.unwrap_or_else(|| {
        io::Error::from_raw_os_error(libc::EINVAL)
    })))
}

/// Deferred task-work items one enter runs at most (Linux 6.13+:
/// `max(20, wait_nr)`; the rest wait for a later enter).
const TASK_WORK_PER_ENTER: usize = 20;
/// Most extra enters after a turn's wait (64 x 20 connections' input).
const MOST_DRAIN_ENTERS: usize = 64;
/// `IORING_ENTER_GETEVENTS` (linux/io_uring.h): run deferred task work.
const ENTER_GETEVENTS: u32 = 1;

/// Runs the deferred task work the wait left. With DEFER_TASKRUN a recv's
/// data is copied and its completion posted by task work, one item per
/// connection that got data, and since Linux 6.13 one enter runs at most 20
/// of them: with more connections sending than that per turn, the others'
/// input waited a turn or more in the kernel, older than the core's delay
/// estimate (the oldest input is at most the last turn plus the wait old),
/// and admitted that late (open loop at ~2x, 100 connections: the client's
/// latency p50 ~950 µs while the server admitted at ~480 µs). After a wait
/// that brought 20 or more completions, enters that wait for nothing run
/// the rest, until one brings fewer.
pub fn run_deferred_work(ring: &mut IoUring) {
    let mut seen = ring.completion().len();
    if seen < TASK_WORK_PER_ENTER {
        return;
    }
    for _ in 0..MOST_DRAIN_ENTERS {
        // SAFETY: an enter that submits nothing and waits for nothing; with
        // GETEVENTS it only runs deferred task work, which posts completions
        // of requests already submitted (their memory is the caller's to keep
        // valid, as for any enter).
        let entered = unsafe {
            ring.submitter()
                .enter::<libc::sigset_t>(0, 0, ENTER_GETEVENTS, None)
        };
        let now = ring.completion().len();
        if entered.is_err() || now < seen + TASK_WORK_PER_ENTER {
            return;
        }
        seen = now;
    }
}

/// Explains why io_uring_setup failed.
fn unavailable(e: io::Error) -> NetError {
    let reason = match e.raw_os_error() {
        Some(libc::ENOSYS) => {
            "io_uring is not implemented by this kernel (ENOSYS); Linux 6.0 or newer is needed"
                .to_string()
        }
        Some(libc::EPERM) | Some(libc::EACCES) => {
            let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into());
            format!(
                "io_uring is not permitted ({e}): kernel.io_uring_disabled = {sysctl} \
                 (must be 0, or 1 with this user in kernel.io_uring_group), or a seccomp \
                 policy such as a container runtime's default profile blocks io_uring_setup"
            )
        }
        _ => format!("io_uring_setup failed: {e}"),
    };
    NetError::Unavailable(reason)
}

/// Checks, once at startup, every io_uring feature the loop relies on and
/// names the first one missing.
pub fn probe() -> Result<(), NetError> {
    let mut ring = create()?;
    let mut ops = Probe::new();
    ring.submitter().register_probe(&mut ops).map_err(|e| {
        NetError::Unavailable(format!(
            "IORING_REGISTER_PROBE failed: {e} (Linux 5.6+ needed)"
        ))
    })?;
    for (code, name) in [
        (opcode::AcceptMulti::CODE, "IORING_OP_ACCEPT"),
        (opcode::RecvMulti::CODE, "IORING_OP_RECV"),
        (opcode::Send::CODE, "IORING_OP_SEND"),
        (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
    ] {
        if !ops.is_supported(code) {
            return Err(NetError::Unavailable(format!(
                "the kernel lacks the {name} io_uring opcode"
            )));
        }
    }
    let mut bufs = BufRing::new(&ring, 0, 2, 64).map_err(|e| {
        NetError::Unavailable(format!(
            "provided buffer rings (IORING_REGISTER_PBUF_RING, Linux 5.19+) are unavailable: {e}"
        ))
    })?;
    let result = probe_multishot_recv(&mut ring, &bufs);
    bufs.unregister(&ring);
    drop(ring);
    drop(bufs);
    result
}

/// Receives one byte over a socketpair with a multishot recv (Linux 6.0+).
fn probe_multishot_recv(ring: &mut IoUring, bufs: &BufRing) -> Result<(), NetError> {
    let fail = |what: String| NetError::Unavailable(format!("multishot recv probe: {what}"));
    let (mut a, b) = UnixStream::pair().map_err(|e| fail(e.to_string()))?;
    a.write_all(b"x").map_err(|e| fail(e.to_string()))?;
    let sqe = opcode::RecvMulti::new(types::Fd(b.as_raw_fd()), bufs.bgid())
        .build()
        .user_data(1);
    // SAFETY: the recv writes only into the registered buffer group, which
    // outlives this function; `b` stays open until the completion is reaped.
    unsafe { ring.submission().push(&sqe) }.map_err(|_| fail("submission queue full".into()))?;
    ring.submit_and_wait(1).map_err(|e| fail(e.to_string()))?;
    let cqe: cqueue::Entry = ring
        .completion()
        .next()
        .ok_or_else(|| fail("no completion".into()))?;
    drop(b);
    drop(a);
    if cqe.result() == -libc::EINVAL {
        return Err(NetError::Unavailable(
            "multishot recv (IORING_RECV_MULTISHOT, Linux 6.0+) is not supported by this kernel"
                .into(),
        ));
    }
    if cqe.result() < 0 {
        return Err(fail(
            io::Error::from_raw_os_error(-cqe.result()).to_string(),
        ));
    }
    if cqueue::buffer_select(cqe.flags()).is_none() {
        return Err(fail("completion carried no provided buffer".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_passes_here() {
        probe().unwrap();
    }

    #[test]
    fn one_turn_reaps_the_input_of_more_than_twenty_connections() {
        let mut ring = create().unwrap();
        let n = 64;
        let pairs: Vec<(UnixStream, UnixStream)> =
            (0..n).map(|_| UnixStream::pair().unwrap()).collect();
        let mut bufs = vec![[0u8; 8]; n];
        for (i, ((ours, _), buf)) in pairs.iter().zip(bufs.iter_mut()).enumerate() {
            let sqe = opcode::Recv::new(types::Fd(ours.as_raw_fd()), buf.as_mut_ptr(), 8)
                .build()
                .user_data(i as u64);
            // SAFETY: `bufs` and the sockets outlive the ring's use of them:
            // every recv completes below before they are dropped.
            unsafe { ring.submission().push(&sqe) }.unwrap();
        }
        ring.submit().unwrap();
        for (_, peer) in &pairs {
            (&*peer).write_all(b"x").unwrap();
        }
        ring.submit_and_wait(1).unwrap();
        run_deferred_work(&mut ring);
        assert_eq!(ring.completion().len(), n, "every connection's input");
        assert!(ring.completion().all(|c| c.result() == 1));
    }

    #[test]
    fn unavailable_names_the_cause() {
        let msg = unavailable(io::Error::from_raw_os_error(libc::ENOSYS)).to_string();
        assert!(
            msg.contains("ENOSYS") && msg.contains("not implemented"),
            "{msg}"
        );
        let msg = unavailable(io::Error::from_raw_os_error(libc::EPERM)).to_string();
        assert!(
            msg.contains("io_uring_disabled") && msg.contains("seccomp"),
            "{msg}"
        );
    }
}
