//! Which decoded frames are selected (see [`crate::Selection`]).

use crate::Selection;

/// Decides per decoded frame, in decode (presentation) order.
#[derive(Debug)]
pub(crate) struct Selector {
    selection: Selection,
    /// Timestamp (seconds) of the first frame: the origin of the `PerSecond` boundaries.
    origin: Option<f64>,
    /// `PerSecond`: the index of the next boundary (`k / f` seconds after the origin).
    next_boundary: u64,
}

impl Selector {
    pub(crate) fn new(selection: Selection) -> Self {
        Selector {
            selection,
            origin: None,
            next_boundary: 0,
        }
    }

    /// `decoded`: 0-based index among decoded frames; `seconds`: the frame's timestamp;
    /// `key`: the frame's keyframe flag.
    pub(crate) fn select(&mut self, decoded: u64, seconds: f64, key: bool) -> bool {
        match self.selection {
            Selection::All => true,
            Selection::EveryNth(n) => decoded % u64::from(n.max(1)) == 0,
            Selection::Keyframes => key,
            Selection::PerSecond(f) => {
                let origin = *self.origin.get_or_insert(seconds);
                let t = (seconds - origin).max(0.0);
                // The boundary interval this frame falls in; a small epsilon absorbs
                // rounding (e.g. 0.49999999 for a frame exactly on 0.5 s).
                let bucket = (t * f + 1e-6).floor();
                let bucket = if bucket.is_finite() { bucket as u64 } else { 0 };
                if bucket >= self.next_boundary {
                    self.next_boundary = bucket + 1;
                    true
                } else {
                    false
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sel: Selection, n: u64, fps: f64) -> Vec<u64> {
        let mut s = Selector::new(sel);
        (0..n)
            .filter(|&i| s.select(i, 7.0 + i as f64 / fps, i % 10 == 0))
            .collect()
    }

    #[test]
    fn every_nth() {
        assert_eq!(
            run(Selection::EveryNth(5), 30, 10.0),
            [0, 5, 10, 15, 20, 25]
        );
        assert_eq!(run(Selection::EveryNth(1), 3, 10.0), [0, 1, 2]);
    }

    #[test]
    fn per_second() {
        assert_eq!(
            run(Selection::PerSecond(2.0), 30, 10.0),
            [0, 5, 10, 15, 20, 25]
        );
        assert_eq!(run(Selection::PerSecond(1.0), 60, 29.97).len(), 2);
        // Faster than the source: every frame, once.
        assert_eq!(run(Selection::PerSecond(100.0), 10, 10.0).len(), 10);
        assert_eq!(
            run(Selection::PerSecond(1.0 / 3.0), 100, 10.0),
            [0, 30, 60, 90]
        );
    }

    #[test]
    fn per_second_skips_gaps() {
        let mut s = Selector::new(Selection::PerSecond(1.0));
        let picked: Vec<f64> = [0.0, 0.2, 3.5, 3.7, 4.0, 4.1]
            .into_iter()
            .enumerate()
            .filter(|&(i, t)| s.select(i as u64, t, false))
            .map(|(_, t)| t)
            .collect();
        assert_eq!(picked, [0.0, 3.5, 4.0]);
    }

    #[test]
    fn keyframes() {
        assert_eq!(run(Selection::Keyframes, 30, 10.0), [0, 10, 20]);
    }
}
