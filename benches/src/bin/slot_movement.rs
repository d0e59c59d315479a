//! Slot movement of the cluster's slot map (weighted rendezvous hashing)
//! as members join and leave, against the ideal (a join of one member of
//! N takes 1/N of the slots; a leave moves only the leaver's), plus the
//! balance and the time to build a map. Not a test: it prints a table.
//!
//! `cargo run --release -p citadel-benches --bin slot-movement`

use std::time::Instant;

use citadel_cluster::SlotMap;
use citadel_proto::cluster::{Member, MemberView, SLOT_COUNT};

fn view(ports: &[(u16, u32)]) -> MemberView {
    let members = ports
        .iter()
        .map(|&(port, weight)| Member::named(&format!("10.0.0.{port}:6379"), None, weight))
        .collect();
    MemberView::new(1, members)
}

fn build(nodes: &[(u16, u32)]) -> (SlotMap, f64) {
    let started = Instant::now();
    let map = SlotMap::build(&view(nodes));
    (map, started.elapsed().as_secs_f64() * 1e3)
}

fn balance(map: &SlotMap) -> String {
    let counts = map.slot_counts();
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    format!("slots/node {min}..{max}")
}

fn main() {
    let slots = f64::from(SLOT_COUNT);
    println!(
        "{:<14} {:>7} {:>7} {:>7} {:>8}  balance after",
        "change", "moved", "ideal", "ratio", "build"
    );
    let mut nodes: Vec<(u16, u32)> = (1..=3).map(|n| (n, 1)).collect();
    let (mut map, _) = build(&nodes);
    for n in 4..=8u16 {
        nodes.push((n, 1));
        let (next, ms) = build(&nodes);
        let moved = map.moved_slots(&next).len() as f64;
        let ideal = slots / nodes.len() as f64;
        let change = format!("join {}->{}", nodes.len() - 1, nodes.len());
        println!(
            "{change:<14} {moved:>7} {ideal:>7.0} {:>7.3} {ms:>6.2}ms  {}",
            moved / ideal,
            balance(&next)
        );
        map = next;
    }
    while nodes.len() > 3 {
        let leaver = nodes.remove(1);
        let owned = map.slot_counts()[map
            .index_of(&Member::id_from_name(&format!("10.0.0.{}:6379", leaver.0)))
            .unwrap()];
        let (next, ms) = build(&nodes);
        let moved = map.moved_slots(&next).len();
        let change = format!("leave {}->{}", nodes.len() + 1, nodes.len());
        println!(
            "{change:<14} {moved:>7} {owned:>7} {:>7.3} {ms:>6.2}ms  {} (ideal: the leaver's own)",
            moved as f64 / owned as f64,
            balance(&next)
        );
        map = next;
    }
    let (weighted, _) = build(&[(1, 1), (2, 1), (3, 2)]);
    let counts = weighted.slot_counts();
    println!("weights 1,1,2: {counts:?} (ideal 4096, 4096, 8192)");
    println!(
        "CLUSTER SLOTS ranges with 3 nodes: {}",
        build(&nodes).0.ranges().len()
    );
    random_joins(1_000);
}

/// The spread of a join's movement over many random member names (a
/// newcomer's share is binomial over the slot groups): the worst ratio to
/// the ideal and how many joins passed 1.1×.
fn random_joins(trials: usize) {
    let mut names = citadel_cluster::sample_member_names(0x9e37_79b9_7f4a_7c15);
    let mut next_name = || names.next().unwrap_or_default();
    println!("random joins ({trials} each): spread of the ratio to 1/N (binomial: the spread expected of independent groups), worst, joins over 1.1x");
    for n in 3..=15usize {
        let (mut worst, mut over, mut sum, mut sum_sq) = (0.0f64, 0usize, 0.0, 0.0);
        for _ in 0..trials {
            let names: Vec<String> = (0..=n).map(|_| next_name()).collect();
            let members = |count: usize| {
                MemberView::new(
                    1,
                    names[..count]
                        .iter()
                        .map(|a| Member::named(a, None, 1))
                        .collect(),
                )
            };
            let moved = SlotMap::build(&members(n))
                .moved_slots(&SlotMap::build(&members(n + 1)))
                .len();
            let ratio = moved as f64 * (n + 1) as f64 / f64::from(SLOT_COUNT);
            worst = worst.max(ratio);
            sum += ratio;
            sum_sq += ratio * ratio;
            over += usize::from(ratio > 1.1);
        }
        let mean = sum / trials as f64;
        let spread = (sum_sq / trials as f64 - mean * mean).sqrt();
        let groups = f64::from(SLOT_COUNT / citadel_cluster::SLOTS_PER_GROUP);
        let binomial = (n as f64 / groups).sqrt();
        println!(
            "  join {n}->{}: spread {spread:.4} (binomial {binomial:.4}), worst {worst:.3}, over 1.1x: {over}",
            n + 1
        );
    }
}
