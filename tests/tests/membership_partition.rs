//! Fencing across a real partition: etcd in one network namespace, a
//! member process in another, this test (an observer node) in its own.
//! Cutting the member's link must make it report `Isolated` no later than
//! the observer's view drops it, so no slot ever has two owners that both
//! serve it; healing the link brings it back. Needs root and `ip netns`
//! (skipped with a message otherwise).

use std::time::Duration;

use citadel_tests::etcd::{has, test_member, test_prefix, Etcd, MemberProcess, Node};
use citadel_tests::netns::{Netns, Veth};

const TTL: Duration = Duration::from_secs(1);

#[test]
fn a_cut_off_member_fences_itself_before_the_others_drop_it() {
    let missing = citadel_tests::netns::unavailable().or_else(citadel_tests::etcd::unavailable);
    if let Some(why) = missing {
        eprintln!("skipping: {why}");
        return;
    }
    let etcd_ns = Netns::new("etcd");
    let member_ns = Netns::new("member");
    // This process ↔ etcd, and member ↔ etcd (the link that is cut).
    let observer_link = Veth::new(None, Some(&etcd_ns));
    let mut member_link = Veth::new(Some(&member_ns), Some(&etcd_ns));
    let etcd = Etcd::start_in(&etcd_ns, &observer_link.b.ip);
    let prefix = test_prefix("partition");

    let observer = Node::start(&[etcd.url()], &prefix, TTL, test_member("observer", 7001));
    let member_url = etcd.url_at(&member_link.b.ip);
    let member_me = test_member("cut-off", 7002);
    let mut member = MemberProcess::start(Some(&member_ns), &[member_url], &prefix, TTL, member_me);
    let id = member.me.id.clone();
    member.lines.wait_for("the member's own view", |l| {
        MemberProcess::line_has(l, &id) && MemberProcess::line_has(l, &observer.me.id)
    });
    observer.wait_view("the member joins", |v| has(v, &id));

    let how = member_link.cut();
    let (isolated_at, line) = member
        .lines
        .wait_for("the member's isolation", |l| l.starts_with("isolated"));
    let (dropped_at, _) = observer.wait_view("the member dropped", |v| !has(v, &id));
    eprintln!(
        "link cut ({how:?}): `{line}`; the others dropped it {:?} later",
        dropped_at.saturating_duration_since(isolated_at)
    );
    assert!(
        isolated_at <= dropped_at,
        "the member was still serving when the others took over ({:?} after)",
        isolated_at - dropped_at
    );

    member_link.heal();
    member
        .lines
        .wait_for("the member back in its own view", |l| {
            MemberProcess::line_has(l, &id)
        });
    observer.wait_view("the member back", |v| has(v, &id));
    member.leave();
    observer.wait_view("the member's clean leave", |v| !has(v, &id));
}
