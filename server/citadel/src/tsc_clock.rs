//! The monotonic clock commands are timed with, read from the CPU's
//! time-stamp counter where the kernel keeps its own time with it.
//!
//! A vDSO `clock_gettime` reads the counter too, but ordered (`rdtscp` or
//! `lfence; rdtsc`): it waits for every earlier load, so a reading taken
//! after a command that missed the cache pays that miss in full, and each
//! costs ~30 ns on this KVM guest (3-4% of a core serving pipelined GETs,
//! one reading a command). A bare `rdtsc` waits for nothing; scaled to
//! nanoseconds it is as good a clock for a command's duration.
//!
//! Only where the kernel's clocksource is `tsc` (it picks it only for a
//! counter that is invariant and synchronised across CPUs) and the CPU says
//! the counter runs at a constant rate through sleep states. The scale is
//! measured against CLOCK_MONOTONIC over the first `CALIBRATION` of
//! readings, which come from `clock_gettime` meanwhile; from then on every
//! thread converts with the same base and scale, so readings of different
//! threads compare. Anywhere else every reading is `clock_gettime`'s.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// How long readings come from the kernel while the counter's rate is
/// measured: a longer window, a smaller error (a few µs of jitter in 20 ms:
/// ~1e-4, well under the spread of a command's duration).
const CALIBRATION_NANOS: u64 = 20_000_000;

/// No reading yet.
const UNKNOWN: u8 = 0;
/// One thread is checking whether the counter may be used.
const PROBING: u8 = 1;
/// The counter is usable; its rate is being measured (`START_*` hold the
/// first pair of readings).
const MEASURING: u8 = 2;
/// One thread is working out the scale.
const SCALING: u8 = 3;
/// Readings come from the counter (`BASE_*` and `SCALE` hold the conversion).
const COUNTER: u8 = 4;
/// Readings come from the kernel, for good.
const KERNEL: u8 = 5;

static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
static START_TICKS: AtomicU64 = AtomicU64::new(0);
static START_NANOS: AtomicU64 = AtomicU64::new(0);
static BASE_TICKS: AtomicU64 = AtomicU64::new(0);
static BASE_NANOS: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per tick, times 2^32.
static SCALE: AtomicU64 = AtomicU64::new(0);

/// Monotonic nanoseconds (CLOCK_MONOTONIC's, or the counter's scaled to
/// agree with it from calibration on).
#[inline]
pub fn now_nanos() -> u64 {
    // ORDERING: Acquire pairs with the Release store of COUNTER: the
    // conversion's values stored before it are seen.
    if STATE.load(Ordering::Acquire) == COUNTER {
        let base = BASE_TICKS.load(Ordering::Relaxed);
        let ticks = ticks().saturating_sub(base);
        let scaled = (u128::from(ticks) * u128::from(SCALE.load(Ordering::Relaxed))) >> 32;
        return BASE_NANOS.load(Ordering::Relaxed) + scaled as u64;
    }
    settling()
}

/// Any state but COUNTER: a kernel reading, which also moves the
/// calibration on.
#[cold]
#[inline(never)]
fn settling() -> u64 {
    let nanos = kernel_nanos();
    // ORDERING: Acquire pairs with the Release stores of MEASURING (the
    // START_* pair) and COUNTER.
    match STATE.load(Ordering::Acquire) {
        // ORDERING: Relaxed compare-exchanges: only their winner goes on,
        // the others read the kernel.
        UNKNOWN if claim(UNKNOWN, PROBING) => {
            let next = if counter_usable() {
                let (ticks, nanos) = paired_reading();
                START_TICKS.store(ticks, Ordering::Relaxed);
                START_NANOS.store(nanos, Ordering::Relaxed);
                MEASURING
            } else {
                KERNEL
            };
            // ORDERING: Release publishes the START_* pair.
            STATE.store(next, Ordering::Release);
        }
        MEASURING
            if nanos.saturating_sub(START_NANOS.load(Ordering::Relaxed)) >= CALIBRATION_NANOS
                && claim(MEASURING, SCALING) =>
        {
            scale_from_window()
        }
        _ => {}
    }
    nanos
}

/// Moves the state from `from` to `to`; true for the one thread that did.
fn claim(from: u8, to: u8) -> bool {
    STATE
        .compare_exchange(from, to, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
}

/// Works out the counter's scale from the start of the window to now and
/// switches every reader to the counter (or to the kernel, should the
/// counter not have moved forward).
fn scale_from_window() {
    let (at, nanos) = paired_reading();
    let ticks_passed = at.saturating_sub(START_TICKS.load(Ordering::Relaxed));
    let nanos_passed = nanos.saturating_sub(START_NANOS.load(Ordering::Relaxed));
    let scale = (u128::from(nanos_passed) << 32)
        .checked_div(u128::from(ticks_passed))
        .and_then(|s| u64::try_from(s).ok())
        .filter(|&s| s > 0);
    let Some(scale) = scale else {
        // ORDERING: Release as for COUNTER (nothing to publish here).
        STATE.store(KERNEL, Ordering::Release);
        return;
    };
    BASE_TICKS.store(at, Ordering::Relaxed);
    BASE_NANOS.store(nanos, Ordering::Relaxed);
    SCALE.store(scale, Ordering::Relaxed);
    // ORDERING: Release publishes the conversion to `now_nanos`'s Acquire.
    STATE.store(COUNTER, Ordering::Release);
}

/// A kernel reading and the counter's midway around it, the closest pair
/// of a few tries: a thread preempted between the two readings would
/// skew the scale by the time it lost.
fn paired_reading() -> (u64, u64) {
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..5 {
        let before = ticks();
        let nanos = kernel_nanos();
        let after = ticks();
        let gap = after.saturating_sub(before);
        if gap < best.0 {
            best = (gap, before + gap / 2, nanos);
        }
    }
    (best.1, best.2)
}

/// CLOCK_MONOTONIC in nanoseconds (0 if the kernel refused it).
#[inline]
pub fn kernel_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, a live local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn ticks() -> u64 {
    // SAFETY: rdtsc reads the time-stamp counter; it touches no memory
    // (user space may run it unless the kernel set CR4.TSD, which Linux
    // does only for seccomp's strict mode, where no clock call is allowed
    // either).
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn ticks() -> u64 {
    0
}

/// Whether the kernel keeps time with the counter and the CPU runs it at
/// a constant rate, in every power state.
fn counter_usable() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let clocksource =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource");
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo");
    match (clocksource, cpuinfo) {
        (Ok(source), Ok(info)) => source.trim() == "tsc" && invariant_counter(&info),
        _ => false,
    }
}

/// Whether `/proc/cpuinfo` text lists `constant_tsc` and `nonstop_tsc`
/// among the first CPU's flags.
fn invariant_counter(cpuinfo: &str) -> bool {
    let Some(flags) = cpuinfo
        .lines()
        .find_map(|line| Some(line.strip_prefix("flags")?.split_once(':')?.1))
    else {
        return false;
    };
    let has = |flag: &str| flags.split_whitespace().any(|word| word == flag);
    has("constant_tsc") && has("nonstop_tsc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_never_go_back_and_agree_with_the_kernel_after_calibration() {
        let mut last = now_nanos();
        let start = kernel_nanos();
        // Through the calibration window and past it.
        while kernel_nanos() - start < 3 * CALIBRATION_NANOS {
            let now = now_nanos();
            assert!(now >= last, "{now} < {last}");
            last = now;
        }
        // Bracketed by two kernel readings: any scale error shows, a
        // preemption between the readings does not.
        for _ in 0..1000 {
            let before = kernel_nanos();
            let ours = now_nanos();
            let after = kernel_nanos();
            let slack = 100_000;
            assert!(
                ours + slack >= before && ours <= after + slack,
                "{before} {ours} {after}"
            );
        }
        assert!(matches!(STATE.load(Ordering::Acquire), COUNTER | KERNEL));
    }

    #[test]
    fn the_counter_is_used_only_with_both_flags() {
        let line = |flags: &str| format!("processor\t: 0\nflags\t\t: {flags}\n");
        assert!(invariant_counter(&line(
            "fpu constant_tsc rep_good nonstop_tsc"
        )));
        assert!(!invariant_counter(&line("fpu constant_tsc rep_good")));
        assert!(!invariant_counter(&line("fpu nonstop_tsc")));
        assert!(!invariant_counter(&line("")));
        assert!(!invariant_counter("processor\t: 0\n"));
    }
}
