//! How slots move as members join and leave, and how weight shares them.
//! The hash is deterministic, so these are exact numbers for these member
//! names; the bounds are the contract for any names (the slot map's own
//! tests check them over many random names): a join or leave moves at most
//! 1.1× the ideal 1/N, nearly all of it to the newcomer (from the leaver);
//! the load cap moves a few more groups between the others.

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
fn a_join_moves_about_one_nth_nearly_all_to_the_newcomer() {
    let three = map(&[(7001, 1), (7002, 1), (7003, 1)]);
    let four = map(&[(7001, 1), (7002, 1), (7003, 1), (7004, 1)]);
    let moved = three.moved_slots(&four);
    let ideal = SLOTS / 4.0;
    assert!((moved.len() as f64) <= 1.1 * ideal, "moved {}", moved.len());
    assert!((moved.len() as f64) >= 0.9 * ideal, "moved {}", moved.len());
    // Nearly every moved slot went to the newcomer.
    let to_newcomer = moved
        .iter()
        .filter(|&&slot| four.owner(slot).unwrap().addr == "127.0.0.1:7004")
        .count();
    assert_eq!(owned_by(&four, 7004), to_newcomer);
    assert!(moved.len() - to_newcomer <= moved.len() / 10);
}

#[test]
fn a_leave_moves_about_the_leavers_slots() {
    let four = map(&[(7001, 1), (7002, 1), (7003, 1), (7004, 1)]);
    let three = map(&[(7001, 1), (7002, 1), (7003, 1)]);
    let moved = four.moved_slots(&three);
    let own = owned_by(&four, 7004);
    let from_leaver = moved
        .iter()
        .filter(|&&slot| four.owner(slot).unwrap().addr == "127.0.0.1:7004")
        .count();
    assert_eq!(from_leaver, own, "every slot of the leaver moves");
    assert!(
        moved.len() as f64 <= 1.1 * own as f64,
        "moved {}",
        moved.len()
    );
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
            moved <= 1.1 * ideal && moved >= 0.85 * ideal,
            "{port}: moved {moved}, ideal {ideal}"
        );
        before = after;
    }
}
