//! The slot of a command's keys (Redis Cluster's rule: all in one slot).

use citadel_proto::cluster::key_slot;

/// Keys of a command in more than one slot: `-CROSSSLOT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossSlot;

/// Accumulates the slots of a command's keys, one key at a time (no
/// allocation: the dispatcher feeds it from the key spec).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeySlots {
    slot: Option<u16>,
    crossed: bool,
}

impl KeySlots {
    #[inline]
    pub fn add(&mut self, key: &[u8]) {
        let slot = key_slot(key);
        match self.slot {
            None => self.slot = Some(slot),
            Some(s) if s != slot => self.crossed = true,
            Some(_) => {}
        }
    }

    /// The one slot of every key added; None when there was none.
    pub fn slot(&self) -> Result<Option<u16>, CrossSlot> {
        if self.crossed {
            return Err(CrossSlot);
        }
        Ok(self.slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_one_slot_or_cross_slot() {
        let mut k = KeySlots::default();
        assert_eq!(k.slot(), Ok(None));
        k.add(b"{user1}.a");
        k.add(b"{user1}.b");
        assert_eq!(k.slot(), Ok(Some(key_slot(b"user1"))));
        k.add(b"other");
        assert_eq!(k.slot(), Err(CrossSlot));
    }
}
