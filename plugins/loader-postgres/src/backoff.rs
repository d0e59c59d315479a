//! Pauses between reconnection attempts: 50 ms, doubling up to a maximum.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Self {
        Self {
            next: FIRST.min(max),
            max,
        }
    }

    /// The pause before the next attempt.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.max);
        pause
    }

    /// After a success: the next failure waits the shortest pause again.
    pub fn reset(&mut self) {
        self.next = FIRST.min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(300));
        let ms: Vec<u128> = (0..5).map(|_| b.next_pause().as_millis()).collect();
        assert_eq!(ms, [50, 100, 200, 300, 300]);
        b.reset();
        assert_eq!(b.next_pause(), Duration::from_millis(50));
    }
}
