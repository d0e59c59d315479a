//! The slot map of one membership view: which member owns each of the
//! 16,384 slots (by weighted rendezvous hashing, `hrw`, over groups of
//! `SLOTS_PER_GROUP` consecutive slots), as a compact table of member
//! indices, and what moves between two maps.

use citadel_proto::cluster::{Member, MemberView, SLOT_COUNT};

use crate::hrw;

/// Slots are dealt in runs of this many consecutive slots (8,192 groups).
/// Two forces set it. CLUSTER SLOTS lists one range per run, and every
/// cluster client parses it at start and after each MOVED: per slot that
/// was ~10,952 ranges for 3 nodes (~1 MB); in pairs about half. And a
/// member's share is binomial over the groups, so fewer groups make a
/// join's movement vary more: with 8,192 groups a newcomer's share is
/// within 1.1× the ideal 1/N at 5.2σ for 4 members and 3.4σ for 8.
pub const SLOTS_PER_GROUP: u16 = 2;

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
        let owner: Box<[u16]> = match seeds.is_empty() {
            true => Box::new([]),
            false => {
                let group_owners = deal_groups(&seeds);
                (0..SLOT_COUNT)
                    .map(|slot| group_owners[usize::from(slot / SLOTS_PER_GROUP)])
                    .collect()
            }
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

/// The owner (member index) of each group: the member with the highest
/// score (`hrw::score`), ties to the lower index. No cap or second pass:
/// a group's owner depends only on the members present, so a join moves
/// exactly the newcomer's wins and a leave exactly the leaver's groups.
fn deal_groups(seeds: &[(u64, u32)]) -> Vec<u16> {
    (0..SLOT_COUNT / SLOTS_PER_GROUP)
        .map(|group| {
            let mut best = (f64::NEG_INFINITY, 0u16);
            for (i, &(seed, weight)) in seeds.iter().enumerate() {
                let score = hrw::score(seed, weight, group);
                if score > best.0 {
                    best = (score, i as u16);
                }
            }
            best.1
        })
        .collect()
}

/// An endless, reproducible stream of member addresses ("10.a.b.c:port")
/// from `seed`: random names for the slot map's tests and the
/// slot-movement benchmark, whose spread is over member ids.
pub fn sample_member_names(seed: u64) -> impl Iterator<Item = String> {
    let mut state = seed.max(1);
    std::iter::repeat_with(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        format!(
            "10.{}.{}.{}:{}",
            state % 256,
            (state >> 8) % 256,
            (state >> 16) % 256,
            6000 + (state >> 24) % 1000
        )
    })
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
        // A share is binomial over the groups: 3 equal members hold
        // 1/3 each, within 6% (about 6σ).
        for count in map.slot_counts() {
            let share = count as f64 / f64::from(SLOT_COUNT);
            assert!((share - 1.0 / 3.0).abs() < 0.02, "{count}");
        }
    }

    /// Joins and leaves over many random member names: a join moves only
    /// the newcomer's slots, within 1.1× the ideal, and the same member
    /// leaving again moves exactly those slots back and no other.
    #[test]
    fn joins_and_leaves_move_about_one_nth_for_any_names() {
        let mut names = sample_member_names(0x2545_f491_4f6c_dd1d);
        let mut name = || names.next().unwrap_or_default();
        let slots = f64::from(SLOT_COUNT);
        for n in [3usize, 4, 5, 7] {
            for _ in 0..10 {
                let names: Vec<String> = (0..=n).map(|_| name()).collect();
                let members: Vec<(&str, u32)> = names.iter().map(|s| (s.as_str(), 1)).collect();
                let before = SlotMap::build(&view(&members[..n]));
                let after = SlotMap::build(&view(&members));
                let ideal = slots / (n + 1) as f64;
                let moved = before.moved_slots(&after).len() as f64;
                assert!(moved <= 1.1 * ideal, "{n}->{}: moved {moved}", n + 1);
                let newcomer = after.index_of(&Member::id_from_name(&names[n])).unwrap();
                let taken = after.slot_counts()[newcomer] as f64;
                assert_eq!(taken, moved, "a join moves the newcomer's slots only");
                assert!(taken >= 0.9 * ideal);
                assert_eq!(after.moved_slots(&before), before.moved_slots(&after));
            }
        }
    }

    /// Any member leaving moves its own slots and nothing else, whatever
    /// the weights.
    #[test]
    fn a_leave_moves_exactly_the_leavers_slots() {
        let members = [("a:1", 1), ("b:1", 2), ("c:1", 1), ("d:1", 3), ("e:1", 1)];
        let all = SlotMap::build(&view(&members));
        for leaver in 0..members.len() {
            let rest: Vec<(&str, u32)> = members
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != leaver)
                .map(|(_, &m)| m)
                .collect();
            let after = SlotMap::build(&view(&rest));
            let id = Member::id_from_name(members[leaver].0);
            let owned: Vec<u16> = (0..SLOT_COUNT)
                .filter(|&slot| all.owner(slot).is_some_and(|m| m.id == id))
                .collect();
            assert_eq!(all.moved_slots(&after), owned);
        }
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
