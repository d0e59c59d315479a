//! A slab of connections indexed by slot, with a generation per slot so a
//! completion for a closed connection cannot reach the slot's next tenant.

pub struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Stores `make(generation)` and returns its (slot, generation).
    pub fn insert_with(&mut self, make: impl FnOnce(u32) -> T) -> (u32, u32) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.entries.push(Entry {
                    generation: 0,
                    value: None,
                });
                (self.entries.len() - 1) as u32
            }
        };
        let entry = &mut self.entries[slot as usize];
        entry.value = Some(make(entry.generation));
        self.len += 1;
        (slot, entry.generation)
    }

    /// The value in `slot` if it is still at `generation`.
    pub fn get(&self, slot: u32, generation: u32) -> Option<&T> {
        let entry = self.entries.get(slot as usize)?;
        if entry.generation != generation {
            return None;
        }
        entry.value.as_ref()
    }

    /// The value in `slot` if it is still at `generation`.
    pub fn get_mut(&mut self, slot: u32, generation: u32) -> Option<&mut T> {
        let entry = self.entries.get_mut(slot as usize)?;
        if entry.generation != generation {
            return None;
        }
        entry.value.as_mut()
    }

    /// The value in `slot` whatever its generation.
    pub fn slot_mut(&mut self, slot: u32) -> Option<&mut T> {
        self.entries.get_mut(slot as usize)?.value.as_mut()
    }

    pub fn remove(&mut self, slot: u32) -> Option<T> {
        let entry = self.entries.get_mut(slot as usize)?;
        let value = entry.value.take()?;
        entry.generation = entry.generation.wrapping_add(1) & ((1 << 28) - 1);
        self.free.push(slot);
        self.len -= 1;
        Some(value)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots in use, in slot order.
    pub fn slots(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.value.as_ref().map(|v| (i as u32, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn reuse_bumps_generation() {
        let mut slab = Slab::default();
        let (a, ga) = slab.insert_with(|_| "a");
        assert_eq!(slab.remove(a), Some("a"));
        let (b, gb) = slab.insert_with(|_| "b");
        assert_eq!(a, b);
        assert_ne!(ga, gb);
        assert!(slab.get_mut(a, ga).is_none());
        assert_eq!(slab.get_mut(b, gb), Some(&mut "b"));
        assert_eq!(slab.len(), 1);
    }
}
