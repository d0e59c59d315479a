//! io_uring plumbing for the workers: ring setup, submission, waiting, cancellation.
//!
//! Why raw `io-uring` rather than `tokio-uring`: tokio-uring runs every operation as a
//! future with an owned buffer, a slab entry and a waker, spread over tasks that a
//! scheduler polls; per request that is bookkeeping (and allocation in its op slab and task
//! spawning) the spec forbids in steady state, and it hides batching: we want every send
//! and receive that is ready to go into one `io_uring_enter`. Driving the ring directly, a
//! loop iteration is: queue new requests into each connection's send buffer, push one SEND
//! per connection with data and one RECV per connection without a pending one, then submit
//! and wait (with a timeout up to the next open-loop deadline) in a single syscall, and
//! reap all completions. Buffers live in the connection and stay put while the kernel uses
//! them (see the SAFETY notes); nothing is allocated per request.

use std::io;
use std::time::Duration;

use io_uring::{opcode, squeue, types, IoUring};

/// A ring whose completions are processed only when this thread enters the kernel
/// (DEFER_TASKRUN: no interrupts to run task work mid-loop), falling back to cooperative
/// task running, then to defaults, on older kernels.
pub fn build(entries: u32) -> io::Result<IoUring> {
    let deferred = IoUring::builder()
        .setup_cqsize(entries * 2)
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_taskrun_flag()
        .build(entries);
    if let Ok(ring) = deferred {
        return Ok(ring);
    }
    let coop = IoUring::builder()
        .setup_cqsize(entries * 2)
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .build(entries);
    coop.or_else(|_| IoUring::builder().setup_cqsize(entries * 2).build(entries))
}

/// Pushes one submission, flushing the queue to the kernel first if it is full.
///
/// # Safety
/// Every buffer `sqe` points to must stay valid until its completion is reaped.
pub unsafe fn push(ring: &mut IoUring, sqe: &squeue::Entry) -> io::Result<()> {
    loop {
        // SAFETY: forwarded from the caller.
        if unsafe { ring.submission().push(sqe) }.is_ok() {
            return Ok(());
        }
        ring.submit()?;
    }
}

/// Submits what is queued and waits for at least one completion or until `wake`
/// (run-clock ns; `now` is the current run-clock time). Waking early is harmless.
pub fn wait(ring: &mut IoUring, now: u64, wake: u64) -> io::Result<()> {
    // A zero timeout still carries GETEVENTS, which DEFER_TASKRUN needs to run completions.
    let ts = types::Timespec::from(Duration::from_nanos(wake.saturating_sub(now)));
    let args = types::SubmitArgs::new().timespec(&ts);
    match ring.submitter().submit_with_args(1, &args) {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
            ) => {}
        Err(e) => return Err(e),
    }
    // Replies beyond 20 connections a loop would otherwise sit unread for
    // another loop (the server's loop drains the same way).
    citadel_net::run_deferred_work(ring);
    Ok(())
}

/// Asks the kernel to cancel every operation in flight on this ring.
pub fn cancel_all(ring: &mut IoUring, user_data: u64) -> io::Result<()> {
    let sqe = opcode::AsyncCancel2::new(types::CancelBuilder::any())
        .build()
        .user_data(user_data);
    // SAFETY: a cancel request references no memory of ours.
    unsafe { push(ring, &sqe) }
}
