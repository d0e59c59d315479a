//! How slots move as members join and leave, and how weight shares them.
//! The hash is deterministic, so these are exact numbers for these member
//! names; the bounds have a wide margin around the ideal (they hold for
//! any names but with a vanishing chance of failure: ≥ 6 standard
//! deviations).

use citadel_cluster::SlotMap;
use citadel_proto::cluster::{Member, MemberView, SLOT_COUNT};

const SLOTS: f64 = SLOT_COUNT as f64;

fn view(nodes: &[(u16, u32)]) -> MemberView {
    let members = nodes
        .iter()
        .map(|&(port, weight)| Member::named(&format!("127.0.0.1:{port}"), None, weight))
        .collect();
    MemberView::new(1, members)
}

fn map(nodes: &[(u16, u32)]) -> SlotMap {
    SlotMap::build(&view(nodes))
}

fn owned_by(map: &SlotMap, port: u16) -> usize {
    let id = Member::id_from_name(&format!("127.0.0.1:{port}"));
    map.slot_counts()[map.index_of(&id).unwrap()]
}

#[test]
fn a_join_moves_about_one_nth_and_only_to_the_newcomer() {
    let three = map(&[(7001, 1), (7002, 1), (7003, 1)]);
    let four = map(&[(7001, 1), (7002, 1), (7003, 1), (7004, 1)]);
    let moved = three.moved_slots(&four);
    let ideal = SLOTS / 4.0;
    assert!((moved.len() as f64) <= 1.1 * ideal, "moved {}", moved.len());
    assert!((moved.len() as f64) >= 0.9 * ideal, "moved {}", moved.len());
    // Every moved slot went to the newcomer.
    for &slot in &moved {
        assert_eq!(four.owner(slot).unwrap().addr, "127.0.0.1:7004");
    }
    assert_eq!(owned_by(&four, 7004), moved.len());
}

#[test]
fn a_leave_moves_only_the_leavers_slots() {
    let four = map(&[(7001, 1), (7002, 1), (7003, 1), (7004, 1)]);
    let three = map(&[(7001, 1), (7002, 1), (7003, 1)]);
    let moved = four.moved_slots(&three);
    assert_eq!(moved.len(), owned_by(&four, 7004));
    for &slot in &moved {
        assert_eq!(four.owner(slot).unwrap().addr, "127.0.0.1:7004");
    }
}

#[test]
fn shares_follow_weights() {
    let m = map(&[(7001, 1), (7002, 1), (7003, 2)]);
    // Ideal: 1/4, 1/4, 1/2 of the slots.
    for (port, share) in [(7001, 0.25), (7002, 0.25), (7003, 0.5)] {
        let got = owned_by(&m, port) as f64 / SLOTS;
        assert!((got - share).abs() < 0.03, "{port}: {got}");
    }
    let ratio = owned_by(&m, 7003) as f64 / owned_by(&m, 7001) as f64;
    assert!((1.75..2.25).contains(&ratio), "weight 2 took {ratio}x");
}

#[test]
fn growing_to_eight_moves_about_one_nth_each_time() {
    let mut nodes: Vec<(u16, u32)> = (7001..7004).map(|p| (p, 1)).collect();
    let mut before = map(&nodes);
    for port in 7004..7009 {
        nodes.push((port, 1));
        let after = map(&nodes);
        let moved = before.moved_slots(&after).len() as f64;
        let ideal = SLOTS / nodes.len() as f64;
        assert!(
            moved <= 1.15 * ideal && moved >= 0.85 * ideal,
            "{port}: moved {moved}, ideal {ideal}"
        );
        before = after;
    }
}
