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
