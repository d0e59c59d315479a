//! The scaling rule on synthetic samples: a clock that only moves when the
//! test says, one sample per `SAMPLE_EVERY`.

use super::*;

const RULE: ScaleRule = ScaleRule {
    delay_target: Duration::from_millis(2),
    up_window: Duration::from_secs(1),
    down_window: Duration::from_secs(3),
    cooldown: Duration::from_secs(2),
};
const RANGE: InstanceRange = InstanceRange { min: 1, max: 3 };

fn look(busy: bool, quiet: bool) -> Look {
    Look {
        live: 1,
        busy,
        quiet,
        why: String::new(),
    }
}

/// Samples every 100 ms from a start; `step` feeds one and decides.
struct Clock {
    samples: Samples,
    now: Instant,
    live: usize,
}

impl Clock {
    fn new() -> Clock {
        let now = Instant::now();
        Clock {
            samples: Samples::new(now),
            now,
            live: 1,
        }
    }

    /// Feeds `n` samples; returns the first decision that is not Stay (and
    /// applies it), or Stay.
    fn feed(&mut self, n: usize, busy: bool, quiet: bool) -> Decision {
        for _ in 0..n {
            self.now += SAMPLE_EVERY;
            self.samples.push(&look(busy, quiet), self.now, &RULE);
            let d = self.samples.decide(self.now, &RULE, RANGE, self.live, true);
            match d {
                Decision::Stay => continue,
                Decision::Grow { .. } => self.live += 1,
                Decision::Shrink { .. } => self.live -= 1,
            }
            self.samples.changed(self.now);
            return d;
        }
        Decision::Stay
    }
}

#[test]
fn a_busy_window_grows_once_covered_and_after_the_cooldown() {
    let mut c = Clock::new();
    // The cool-down after start (2 s) holds the first growth back even
    // though the up window (1 s) was busy long before.
    assert_eq!(c.feed(19, true, false), Decision::Stay);
    assert_eq!(
        c.feed(1, true, false),
        Decision::Grow {
            busy: 11,
            total: 11
        }
    );
    assert_eq!(c.live, 2);
}

#[test]
fn a_minority_of_busy_samples_does_not_grow() {
    let mut c = Clock::new();
    // One sample in three busy: at most 4 of the up window's 11.
    for _ in 0..20 {
        assert_eq!(c.feed(1, true, false), Decision::Stay);
        assert_eq!(c.feed(2, false, false), Decision::Stay);
    }
    assert_eq!(c.live, 1);
}

#[test]
fn after_a_change_the_windows_start_afresh() {
    let mut c = Clock::new();
    assert!(matches!(c.feed(40, true, false), Decision::Grow { .. }));
    // Still busy: the next growth waits the cool-down again, not just one
    // more busy sample.
    assert_eq!(c.feed(19, true, false), Decision::Stay);
    assert!(matches!(c.feed(1, true, false), Decision::Grow { .. }));
    assert_eq!(c.live, 3);
    // At MAX: busy forever changes nothing.
    assert_eq!(c.feed(100, true, false), Decision::Stay);
}

#[test]
fn shrinking_needs_every_sample_of_the_longer_window_quiet() {
    let mut c = Clock::new();
    c.live = 3;
    // 2.9 s of quiet: the down window (3 s) is not covered yet.
    assert_eq!(c.feed(29, false, true), Decision::Stay);
    // One sample neither busy nor quiet resets the count of quiet ones.
    assert_eq!(c.feed(1, false, false), Decision::Stay);
    assert_eq!(c.feed(30, false, true), Decision::Stay);
    assert_eq!(c.feed(1, false, true), Decision::Shrink { quiet: 31 });
    assert_eq!(c.live, 2);
    // The next step down waits for a fresh, fully quiet down window.
    assert_eq!(c.feed(29, false, true), Decision::Stay);
    assert!(matches!(c.feed(1, false, true), Decision::Shrink { .. }));
    assert_eq!(c.live, 1);
    // At MIN: quiet forever changes nothing.
    assert_eq!(c.feed(100, false, true), Decision::Stay);
}

#[test]
fn an_unsettled_plugin_stays() {
    let mut c = Clock::new();
    for _ in 0..40 {
        c.now += SAMPLE_EVERY;
        c.samples.push(&look(true, false), c.now, &RULE);
        let d = c.samples.decide(c.now, &RULE, RANGE, 1, false);
        assert_eq!(d, Decision::Stay);
    }
}

fn slot(full: u64, delivered: u64, busy_ns: u64, live: bool, in_flight: u64) -> SlotLook {
    SlotLook {
        delta: RingLoad {
            full,
            delivered,
            busy_ns,
        },
        live,
        in_flight,
    }
}

#[test]
fn a_look_is_busy_on_a_full_ring_or_queueing_past_the_target() {
    let target = 2_000_000; // 2 ms
    let second = 1_000_000_000;
    let mut mean = vec![0; 2];
    // A full ring: busy whatever the queue.
    let l = judge(
        &[slot(3, 10, 1000, true, 0), slot(0, 0, 0, false, 0)],
        &mut mean,
        second,
        target,
    )
    .unwrap();
    assert!(l.busy && !l.quiet, "{l:?}");
    assert_eq!(l.live, 1);
    // 1 ms per call, 3 in flight on the least loaded live slot: 3 ms > 2 ms.
    let l = judge(
        &[
            slot(0, 100, 100_000_000, true, 3),
            slot(0, 100, 100_000_000, true, 5),
        ],
        &mut mean,
        second,
        target,
    )
    .unwrap();
    assert!(l.busy, "{l:?}");
    // Idle now, but the mean handler time is remembered: 1 in flight, 1 ms.
    let l = judge(
        &[slot(0, 0, 0, true, 1), slot(0, 0, 0, true, 1)],
        &mut mean,
        second,
        target,
    )
    .unwrap();
    assert!(!l.busy && l.quiet, "{l:?}");
    assert_eq!(mean, vec![1_000_000, 1_000_000]);
    // Two slots 20% busy each: one would be 40% busy, so quiet.
    let l = judge(
        &[
            slot(0, 200, 200_000_000, true, 0),
            slot(0, 200, 200_000_000, true, 0),
        ],
        &mut mean,
        second,
        target,
    )
    .unwrap();
    assert!(l.quiet && !l.busy, "{l:?}");
    // Two slots 30% busy: one would be 60% busy, not quiet.
    let l = judge(
        &[
            slot(0, 300, 300_000_000, true, 0),
            slot(0, 300, 300_000_000, true, 0),
        ],
        &mut mean,
        second,
        target,
    )
    .unwrap();
    assert!(!l.quiet && !l.busy, "{l:?}");
    // No live slot: no sample.
    assert_eq!(
        judge(&[slot(0, 0, 0, false, 0)], &mut [0], second, target),
        None
    );
}
