//! What one core keeps for hot-key detection besides its counters: the
//! sampling countdown and its top list (the keys with the highest
//! windowed estimates), published to the shared registry each time the
//! ring advances.

use super::sketch::CoreSketch;

/// Keys longer than this are counted but not listed (a top entry's key
/// buffer is reused, never grown past it).
pub const MAX_LISTED_KEY: usize = 256;

/// One candidate of a core's top list.
pub struct Candidate {
    pub hash: u64,
    /// Room for [`MAX_LISTED_KEY`] bytes from the start: replacing the key
    /// never allocates.
    pub key: Vec<u8>,
    /// Windowed estimate when last counted (samples, not scaled).
    pub count: u32,
}

impl Default for Candidate {
    fn default() -> Self {
        Candidate {
            hash: 0,
            key: Vec::with_capacity(MAX_LISTED_KEY),
            count: 0,
        }
    }
}

impl Candidate {
    fn set(&mut self, hash: u64, key: &[u8], count: u32) {
        self.hash = hash;
        self.key.clear();
        self.key.extend_from_slice(key);
        self.count = count;
    }
}

/// A core publishes its list at least every this many samples (and each
/// time its ring advances), so a new hot key shows within a slice even
/// when the window is long.
const PUBLISH_EVERY: u32 = 1024;

/// A core's recording side, owned by its thread.
#[derive(Default)]
pub struct Recorder {
    /// Keyed commands left until the next sample.
    countdown: u32,
    /// Samples since the list was last published.
    unpublished: u32,
    /// Xorshift state of the randomized countdown (0: not seeded yet).
    rng: u32,
    /// The list: `capacity` entries allocated at the first sample, the
    /// first `used` of them listed.
    top: Vec<Candidate>,
    used: usize,
    /// The smallest count in a full list (0 while it has room): a sample
    /// whose estimate is below it cannot enter.
    floor: u32,
    /// The latest clock reading a sample was counted at.
    latest: u64,
}

impl Recorder {
    /// Counts one keyed command; true when it is the one to sample (the
    /// caller then calls [`Recorder::sample`] with the current period).
    #[inline]
    pub fn due(&mut self) -> bool {
        if self.countdown > 1 {
            self.countdown -= 1;
            return false;
        }
        true
    }

    /// The reading to count a sample taken at `now` at: `now`, or the
    /// latest reading counted when `now` is older (this core's slices only
    /// move forward).
    #[inline]
    pub fn latest(&mut self, now: u64) -> u64 {
        self.latest = self.latest.max(now);
        self.latest
    }

    /// Restarts the countdown: on average `period` commands to the next
    /// sample, drawn uniformly from 1..2*period, so traffic that repeats
    /// with a period sharing a factor with it is not seen through a fixed
    /// stride (a key at every 100th command would alias with every 8th).
    pub fn rearm(&mut self, period: u32) {
        if period <= 1 {
            self.countdown = 1;
            return;
        }
        if self.rng == 0 {
            self.rng = (0x9E37_79B9 ^ (self as *const Self as usize as u32)) | 1;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        let span = period.saturating_mul(2) - 1;
        self.countdown = 1 + self.rng % span;
    }

    /// Counts a sampled key in `sketch` (slice `now`) and keeps it as a
    /// candidate if its estimate is among this core's `capacity` highest.
    /// Returns whether the ring advanced (the list should be published).
    pub fn sample(
        &mut self,
        sketch: &CoreSketch,
        capacity: usize,
        hash: u64,
        key: &[u8],
        now: u64,
    ) -> bool {
        if self.top.len() != capacity {
            // `hotkeys-top` changed: keep what fits; until the list is
            // full again, any key may enter.
            self.top.resize_with(capacity, Candidate::default);
            self.used = self.used.min(capacity);
            self.floor = 0;
        }
        let (estimate, advanced) = sketch.add(hash, now);
        if advanced {
            self.refresh(sketch, now);
        }
        if estimate >= self.floor && key.len() <= MAX_LISTED_KEY {
            self.offer(hash, key, estimate);
        }
        advanced
    }

    fn offer(&mut self, hash: u64, key: &[u8], estimate: u32) {
        let used = self.used;
        if let Some(c) = self.top[..used]
            .iter_mut()
            .find(|c| c.hash == hash && c.key == key)
        {
            c.count = estimate;
        } else if used < self.top.len() {
            self.top[used].set(hash, key, estimate);
            self.used += 1;
        } else if let Some(low) = self.top[..used].iter_mut().min_by_key(|c| c.count) {
            if estimate <= low.count {
                return;
            }
            low.set(hash, key, estimate);
        }
        if self.used == self.top.len() {
            self.floor = self.listed().iter().map(|c| c.count).min().unwrap_or(0);
        }
    }

    /// Re-counts every candidate after the ring advanced; those that fell
    /// to zero leave (moved past `used`, their buffers kept).
    fn refresh(&mut self, sketch: &CoreSketch, now: u64) {
        let mut kept = 0;
        for i in 0..self.used {
            self.top[i].count = sketch.estimate(self.top[i].hash, now);
            if self.top[i].count > 0 {
                self.top.swap(kept, i);
                kept += 1;
            }
        }
        self.used = kept;
        self.floor = 0;
    }

    /// Whether the list is due to be published after this sample (`advanced`:
    /// the ring advanced with it); restarts the count when it is.
    pub fn publish_due(&mut self, advanced: bool) -> bool {
        self.unpublished += 1;
        if advanced || self.unpublished >= PUBLISH_EVERY {
            self.unpublished = 0;
            return true;
        }
        false
    }

    /// The listed candidates.
    pub fn listed(&self) -> &[Candidate] {
        &self.top[..self.used]
    }

    /// Copies the list into `published`, reusing its buffers (they are
    /// allocated with room for any listed key, so this allocates only
    /// while `published` grows to the list's capacity).
    pub fn publish_into(&self, published: &mut Vec<Candidate>) {
        let listed = self.listed();
        published.truncate(listed.len());
        while published.len() < listed.len() {
            published.push(Candidate::default());
        }
        for (to, from) in published.iter_mut().zip(listed) {
            to.set(from.hash, &from.key, from.count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heaviest_keys_stay_listed() {
        let sketch = CoreSketch::default();
        let mut r = Recorder::default();
        for i in 0..2000u64 {
            let key = if i % 10 == 0 {
                b"hot".to_vec()
            } else {
                i.to_string().into_bytes()
            };
            let hash = xxhash_rust::xxh3::xxh3_64(&key);
            r.sample(&sketch, 4, hash, &key, 1);
        }
        let hot = r.listed().iter().find(|c| c.key == b"hot").expect("listed");
        assert_eq!(hot.count, 200);
        assert_eq!(r.listed().len(), 4);
    }
}
