//! The slot map of one membership view: which member owns each of the
//! 16,384 slots (by weighted rendezvous hashing, `hrw`, over groups of
//! `SLOTS_PER_GROUP` consecutive slots), as a compact
//! table of member indices, and what moves between two maps.

use citadel_proto::cluster::{Member, MemberView, SLOT_COUNT};

use crate::hrw;

/// Slots are dealt in runs of this many consecutive slots (1,024 groups):
/// CLUSTER SLOTS then lists at most 1,024 ranges (tens of KiB, not the
/// ~1 MB of per-slot owners), at the cost of a coarser balance (a member's
/// share varies by about ±4% at 3 members instead of ±1%).
pub const SLOTS_PER_GROUP: u16 = 16;

/// The owner of every slot for one view. Immutable: a new view is a new map.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotMap {
    revision: u64,
    /// Sorted by id (as in the view).
    members: Vec<Member>,
    /// Index into `members` per slot (empty when there are no members).
    owner: Box<[u16]>,
}

/// A run of consecutive slots with one owner (what CLUSTER SLOTS lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRange {
    pub start: u16,
    /// Inclusive, as Redis writes ranges.
    pub end: u16,
    /// Index of the owner in [`SlotMap::members`].
    pub owner: usize,
}

impl SlotMap {
    /// The map of `view`: each slot to the member with the highest score.
    /// Members past the 65,535th are ignored (a cluster is far smaller).
    pub fn build(view: &MemberView) -> SlotMap {
        let members: Vec<Member> = view
            .members
            .iter()
            .take(usize::from(u16::MAX))
            .cloned()
            .collect();
        let seeds: Vec<(u64, u32)> = members
            .iter()
            .map(|m| (hrw::member_seed(&m.id), m.weight))
            .collect();
        let owner: Box<[u16]> = if seeds.is_empty() {
            Box::new([])
        } else {
            let group_owners: Vec<u16> = (0..SLOT_COUNT / SLOTS_PER_GROUP)
                .map(|group| {
                    let mut best = (0u16, f64::NEG_INFINITY);
                    for (i, &(seed, weight)) in seeds.iter().enumerate() {
                        let s = hrw::score(seed, weight, group);
                        // Ties (never in practice) go to the lowest id.
                        if s > best.1 {
                            best = (i as u16, s);
                        }
                    }
                    best.0
                })
                .collect();
            (0..SLOT_COUNT)
                .map(|slot| group_owners[usize::from(slot / SLOTS_PER_GROUP)])
                .collect()
        };
        SlotMap {
            revision: view.revision,
            members,
            owner,
        }
    }

    /// No members: every slot unowned.
    pub fn empty() -> SlotMap {
        SlotMap::build(&MemberView::default())
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The members, sorted by id.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Index of `slot`'s owner in [`SlotMap::members`].
    #[inline]
    pub fn owner_index(&self, slot: u16) -> Option<usize> {
        self.owner.get(usize::from(slot)).map(|&i| usize::from(i))
    }

    #[inline]
    pub fn owner(&self, slot: u16) -> Option<&Member> {
        self.owner_index(slot).map(|i| &self.members[i])
    }

    /// The index of the member with `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.members
            .binary_search_by(|m| m.id.as_str().cmp(id))
            .ok()
    }

    /// The runs of consecutive slots with one owner, in slot order.
    pub fn ranges(&self) -> Vec<SlotRange> {
        let mut runs: Vec<SlotRange> = Vec::new();
        for (slot, &owner) in self.owner.iter().enumerate() {
            let (slot, owner) = (slot as u16, usize::from(owner));
            match runs.last_mut() {
                Some(run) if run.owner == owner && run.end + 1 == slot => run.end = slot,
                _ => runs.push(SlotRange {
                    start: slot,
                    end: slot,
                    owner,
                }),
            }
        }
        runs
    }

    /// How many slots each member owns (by member index).
    pub fn slot_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.members.len()];
        for &o in self.owner.iter() {
            counts[usize::from(o)] += 1;
        }
        counts
    }

    /// The slots whose owner (by id) differs between `self` and `next`; a
    /// slot unowned in either counts as moved.
    pub fn moved_slots(&self, next: &SlotMap) -> Vec<u16> {
        (0..SLOT_COUNT)
            .filter(|&slot| match (self.owner(slot), next.owner(slot)) {
                (Some(a), Some(b)) => a.id != b.id,
                _ => true,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn view(names: &[(&str, u32)]) -> MemberView {
        let members = names
            .iter()
            .map(|&(addr, weight)| Member::named(addr, None, weight))
            .collect();
        MemberView::new(1, members)
    }

    #[test]
    fn every_slot_has_an_owner_and_ranges_cover_them_in_order() {
        let map = SlotMap::build(&view(&[("a:1", 1), ("b:1", 1), ("c:1", 1)]));
        let ranges = map.ranges();
        assert_eq!(ranges[0].start, 0);
        assert_eq!(ranges.last().unwrap().end, SLOT_COUNT - 1);
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].end + 1, pair[1].start);
            assert_ne!(pair[0].owner, pair[1].owner);
        }
        assert_eq!(
            map.slot_counts().iter().sum::<usize>(),
            usize::from(SLOT_COUNT)
        );
        let a = map.index_of(&Member::id_from_name("a:1")).unwrap();
        assert_eq!(map.members()[a].addr, "a:1");
    }

    #[test]
    fn the_same_view_gives_the_same_map_whatever_the_order() {
        let one = SlotMap::build(&view(&[("a:1", 1), ("b:1", 2), ("c:1", 1)]));
        let two = SlotMap::build(&view(&[("c:1", 1), ("a:1", 1), ("b:1", 2)]));
        assert_eq!(one, two);
        assert!(one.moved_slots(&two).is_empty());
    }

    #[test]
    fn slots_go_in_groups_so_cluster_slots_stays_small() {
        let map = SlotMap::build(&view(&[("a:1", 1), ("b:1", 1), ("c:1", 1)]));
        let ranges = map.ranges();
        assert!(ranges.len() <= usize::from(SLOT_COUNT / SLOTS_PER_GROUP));
        for range in &ranges {
            assert_eq!(range.start % SLOTS_PER_GROUP, 0);
            assert_eq!((range.end + 1) % SLOTS_PER_GROUP, 0);
        }
        // Each of 3 equal members holds about a third (within ±15%).
        for count in map.slot_counts() {
            let third = usize::from(SLOT_COUNT) / 3;
            assert!(count.abs_diff(third) < third * 15 / 100, "{count}");
        }
        // A fourth member takes about a quarter, only from the others.
        let four = SlotMap::build(&view(&[("a:1", 1), ("b:1", 1), ("c:1", 1), ("d:1", 1)]));
        let moved = map.moved_slots(&four);
        let d = four.index_of(&Member::id_from_name("d:1")).unwrap();
        assert!(moved.iter().all(|&slot| four.owner_index(slot) == Some(d)));
        let quarter = usize::from(SLOT_COUNT) / 4;
        assert!(moved.len().abs_diff(quarter) < quarter * 20 / 100);
    }

    #[test]
    fn no_members_own_nothing() {
        let map = SlotMap::empty();
        assert_eq!(map.owner(0), None);
        assert!(map.ranges().is_empty());
        let one = SlotMap::build(&view(&[("a:1", 1)]));
        assert_eq!(one.moved_slots(&map).len(), usize::from(SLOT_COUNT));
        assert_eq!(one.ranges().len(), 1);
    }
}
