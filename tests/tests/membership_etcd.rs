//! etcd membership against a real etcd (started here on free ports): nodes
//! converge on one view per revision, a clean stop leaves at once, a
//! crashed node leaves when its lease expires, garbage under the prefix is
//! skipped, and losing etcd isolates every node until it returns.

use std::time::{Duration, Instant};

use citadel_membership::{Member, MemberView};
use citadel_tests::etcd::{has, test_member, test_prefix, unavailable, Etcd, MemberProcess, Node};
use citadel_tests::free_port;

const TTL: Duration = Duration::from_secs(1);

/// A fresh etcd, this test's key prefix and the URLs to reach etcd;
/// `None` (after saying why) where etcd cannot run.
fn setup(test: &str) -> Option<(Etcd, String, [String; 1])> {
    if let Some(why) = unavailable() {
        eprintln!("skipping: {why}");
        return None;
    }
    let etcd = Etcd::start();
    let urls = [etcd.url()];
    Some((etcd, test_prefix(test), urls))
}

fn ids(view: &MemberView) -> Vec<&str> {
    view.members.iter().map(|m| m.id.as_str()).collect()
}

fn all_of(view: &MemberView, members: &[&Member]) -> bool {
    view.members.len() == members.len() && members.iter().all(|m| has(view, &m.id))
}

#[test]
fn nodes_converge_on_one_view_and_a_clean_stop_leaves_at_once() {
    let Some((etcd, prefix, urls)) = setup("converge") else {
        return;
    };
    let nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|name| Node::start(&urls, &prefix, TTL, test_member(name, free_port())))
        .collect();
    let everyone: Vec<&Member> = nodes.iter().map(|n| &n.me).collect();
    let views: Vec<MemberView> = nodes
        .iter()
        .map(|n| n.wait_view("all three", |v| all_of(v, &everyone)).1)
        .collect();
    assert!(
        views.iter().all(|v| *v == views[0]),
        "every node holds the same view at the same revision: {views:?}"
    );

    let (mut leaving, staying) = {
        let mut nodes = nodes;
        let c = nodes.pop().unwrap();
        (c, nodes)
    };
    leaving.stop();
    // Revoked before stop returned: the key is already gone.
    let (_, kvs) = etcd
        .client()
        .range_prefix(&prefix, Instant::now() + Duration::from_secs(5))
        .unwrap();
    assert_eq!(kvs.len(), 2, "the stopped node's key is gone at once");
    let after: Vec<MemberView> = staying
        .iter()
        .map(|n| n.wait_view("c gone", |v| !has(v, &leaving.me.id)).1)
        .collect();
    assert_eq!(after[0], after[1]);
    assert_eq!(after[0].members.len(), 2);
    assert!(after[0].revision > views[0].revision);
}

#[test]
fn a_crashed_member_leaves_when_its_lease_expires() {
    let Some((_etcd, prefix, urls)) = setup("crash") else {
        return;
    };
    let observer = Node::start(&urls, &prefix, TTL, test_member("observer", free_port()));
    let mut crashing =
        MemberProcess::start(None, &urls, &prefix, TTL, test_member("crash", free_port()));
    let id = crashing.me.id.clone();
    crashing
        .lines
        .wait_for("its own registration", |l| MemberProcess::line_has(l, &id));
    observer.wait_view("the process joins", |v| has(v, &id));
    let killed = Instant::now();
    crashing.kill();
    let (dropped, view) = observer.wait_view("the process leaves", |v| !has(v, &id));
    assert_eq!(ids(&view), vec![observer.me.id.as_str()]);
    eprintln!(
        "crashed member dropped {:?} after the kill (lease TTL {TTL:?})",
        dropped - killed
    );
}

#[test]
fn garbage_under_the_prefix_is_skipped() {
    let Some((etcd, prefix, urls)) = setup("garbage") else {
        return;
    };
    let node = Node::start(&urls, &prefix, TTL, test_member("a", free_port()));
    let mut client = etcd.client();
    let soon = || Instant::now() + Duration::from_secs(5);
    let garbage_rev = client
        .put(
            &format!("{prefix}members/zzz"),
            b"\xff\x00 not a record",
            0,
            soon(),
        )
        .unwrap();
    let stray = test_member("stray", 1);
    // A valid record filed under another id's key.
    let misfiled = client
        .put(
            &format!("{prefix}members/{}", "0".repeat(40)),
            stray.to_text().as_bytes(),
            0,
            soon(),
        )
        .unwrap();
    let (_, view) = node.wait_view("the misfiled put's revision", |v| v.revision == misfiled);
    assert!(misfiled > garbage_rev);
    assert_eq!(
        ids(&view),
        vec![node.me.id.as_str()],
        "both records skipped"
    );
    // And the node still follows real changes.
    let other = Node::start(&urls, &prefix, TTL, test_member("b", free_port()));
    node.wait_view("b joins", |v| has(v, &other.me.id) && v.members.len() == 2);
}

#[test]
fn losing_etcd_isolates_every_node_until_it_returns() {
    let Some((mut etcd, prefix, urls)) = setup("outage") else {
        return;
    };
    let nodes: Vec<Node> = ["a", "b"]
        .iter()
        .map(|name| Node::start(&urls, &prefix, TTL, test_member(name, free_port())))
        .collect();
    let everyone: Vec<&Member> = nodes.iter().map(|n| &n.me).collect();
    for node in &nodes {
        node.wait_view("both", |v| all_of(v, &everyone));
    }
    let killed = Instant::now();
    etcd.kill();
    for node in &nodes {
        let (at, reason) = node.wait_isolated();
        eprintln!("isolated {:?} after etcd died: {reason}", at - killed);
    }
    etcd.restart();
    for node in &nodes {
        let (_, view) = node.wait_view("both again", |v| all_of(v, &everyone));
        assert!(has(&view, &node.me.id));
    }
}
