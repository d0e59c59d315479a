//! Pub/Sub in cluster mode, as Redis Cluster: a PUBLISH on any node
//! reaches the subscribers of every node, in publish order, and its reply
//! counts the receivers of the node it was published on; PUBSUB's counts
//! are each node's own; a stopped peer neither holds up PUBLISH nor the
//! other peers; SPUBLISH/SSUBSCRIBE go to the channel's slot owner only;
//! keyspace notifications stay on their node; CLUSTER PUBLISH (the
//! broadcast's internal command) is refused to clients.

use std::time::Duration;

use citadel_tests::clients::{info_field, wait_until};
use citadel_tests::cluster::Cluster;
use citadel_tests::redis;
use citadel_tests::reference::encode_command;
use citadel_tests::{Frame, RespReader, Server};

/// Messages each publisher sends per round.
const MESSAGES: usize = 30;

fn send(r: &mut RespReader, args: &[&str]) -> Frame {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.send(&encode_command(&args));
    r.reply().expect("a reply")
}

fn publish(con: &mut redis::Connection, channel: &str, message: &str) -> i64 {
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(message)
        .query(con)
        .unwrap()
}

fn pubsub_counter(node: &Server, field: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("cluster")
        .query(&mut node.client())
        .unwrap();
    info_field(&info, &format!("cluster_pubsub_{field}"))
}

/// The next message's payload on `sub` (a subscriber's pushes, as text).
fn next_payload(sub: &mut redis::PubSub<'_>) -> String {
    sub.get_message().unwrap().get_payload().unwrap()
}

/// The payload of the next message pushed on a raw subscriber connection
/// (`message`/`smessage`: the last element).
fn raw_payload(r: &mut RespReader) -> (String, String) {
    match r.reply().expect("a message") {
        Frame::Array(items) => {
            let text = |f: &Frame| match f {
                Frame::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("not a bulk string: {other:?}"),
            };
            (text(&items[0]), text(items.last().unwrap()))
        }
        other => panic!("not a message: {other:?}"),
    }
}

#[test]
fn publish_on_any_node_reaches_every_node_in_order() {
    let cluster = Cluster::start(3);
    let mut conns: Vec<redis::Connection> = cluster.nodes.iter().map(Server::client).collect();
    // Node 0 also has a pattern subscriber.
    let mut pattern_conn = cluster.nodes[0].client();
    let mut subs: Vec<redis::PubSub<'_>> = conns.iter_mut().map(|c| c.as_pubsub()).collect();
    for sub in &mut subs {
        sub.subscribe("news").unwrap();
        sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let mut pattern = pattern_conn.as_pubsub();
    pattern.psubscribe("ne*").unwrap();
    pattern
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    for (from, node) in cluster.nodes.iter().enumerate() {
        let mut publisher = node.client();
        let local = if from == 0 { 2 } else { 1 };
        for i in 0..MESSAGES {
            // The reply counts this node's receivers only (as Redis Cluster).
            assert_eq!(
                publish(&mut publisher, "news", &format!("{from}:{i}")),
                local
            );
        }
        for (at, sub) in subs.iter_mut().enumerate() {
            for i in 0..MESSAGES {
                assert_eq!(next_payload(sub), format!("{from}:{i}"), "on node {at}");
            }
        }
        for i in 0..MESSAGES {
            assert_eq!(next_payload(&mut pattern), format!("{from}:{i}"));
        }
    }

    // Each peer took every copy (the counters follow the replies).
    for node in &cluster.nodes {
        let want = (2 * MESSAGES) as u64;
        wait_until("peers answer", Duration::from_secs(10), || {
            pubsub_counter(node, "delivered") == want
        });
        assert_eq!(pubsub_counter(node, "dropped"), 0);
    }

    // PUBSUB counts this node's subscribers only (as Redis Cluster).
    let mut c1 = cluster.nodes[1].client();
    let numsub: (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("news")
        .query(&mut c1)
        .unwrap();
    assert_eq!(numsub.1, 1);
    let numpat: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query(&mut c1).unwrap();
    assert_eq!(numpat, 0);
    let numpat: i64 = redis::cmd("PUBSUB")
        .arg("NUMPAT")
        .query(&mut cluster.nodes[0].client())
        .unwrap();
    assert_eq!(numpat, 1);
    let channels: Vec<String> = redis::cmd("PUBSUB").arg("CHANNELS").query(&mut c1).unwrap();
    assert_eq!(channels, ["news"]);

    // From a script: held with its transaction attempt, sent once.
    let script = "return redis.call('PUBLISH', 'news', 'scripted')";
    let n: i64 = redis::cmd("EVAL")
        .arg(script)
        .arg(0)
        .query(&mut cluster.nodes[2].client())
        .unwrap();
    assert_eq!(n, 1);
    for sub in &mut subs {
        assert_eq!(next_payload(sub), "scripted");
    }
    assert_eq!(next_payload(&mut pattern), "scripted");

    // CLUSTER PUBLISH is the broadcast's internal command: refused to a
    // client; a peer's connection (CLUSTER NOPROXY) delivers it here only.
    let mut r = RespReader::new(cluster.nodes[1].raw());
    match send(&mut r, &["CLUSTER", "PUBLISH", "news", "direct"]) {
        Frame::Error(e) => assert!(e.contains("for peer nodes"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    send(&mut r, &["CLUSTER", "NOPROXY"]);
    let delivered = send(&mut r, &["CLUSTER", "PUBLISH", "news", "direct"]);
    assert_eq!(delivered, Frame::Integer(1));
    assert_eq!(next_payload(&mut subs[1]), "direct");
    // Only there, and the script's message once: node 2's next message
    // is the one published after.
    assert_eq!(publish(&mut cluster.nodes[2].client(), "news", "after"), 1);
    assert_eq!(next_payload(&mut subs[2]), "after");
}

#[test]
fn a_stopped_peer_holds_up_neither_publish_nor_the_other_peers() {
    let mut cluster = Cluster::start_with(3, &["--cluster-forward-timeout-ms", "300"]);
    let (mut c1, mut c2) = (cluster.nodes[1].client(), cluster.nodes[2].client());
    let (mut s1, mut s2) = (c1.as_pubsub(), c2.as_pubsub());
    for sub in [&mut s1, &mut s2] {
        sub.subscribe("alerts").unwrap();
        sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let mut publisher = cluster.nodes[0].client();
    // The links are up: one message through each.
    assert_eq!(publish(&mut publisher, "alerts", "warm"), 0);
    assert_eq!(next_payload(&mut s1), "warm");
    assert_eq!(next_payload(&mut s2), "warm");

    cluster.nodes[2].signal("STOP");
    for i in 0..5 {
        // Answers (the client's read timeout would fail a hang).
        assert_eq!(publish(&mut publisher, "alerts", &format!("m{i}")), 0);
    }
    for i in 0..5 {
        assert_eq!(next_payload(&mut s1), format!("m{i}"));
    }
    // The stopped node's copies time out and are counted as dropped.
    wait_until("copies dropped", Duration::from_secs(10), || {
        pubsub_counter(&cluster.nodes[0], "dropped") >= 1
    });
    cluster.nodes[2].signal("CONT");
    // Back: once its circuit closes, new messages reach it again.
    let mut reached = false;
    s2.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    for _ in 0..150 {
        publish(&mut publisher, "alerts", "probe");
        if let Ok(m) = s2.get_message() {
            let payload: String = m.get_payload().unwrap();
            // Messages sent while it was stopped and timed out: never
            // delivered late, out of order; "probe" or a message written
            // before it stopped answering ("m0".."m4" in order).
            if payload == "probe" {
                reached = true;
                break;
            }
            assert!(payload.starts_with('m'), "{payload}");
        }
    }
    assert!(reached, "the resumed node got no message");

    // A killed peer: PUBLISH still answers, the live peer still gets it.
    cluster.nodes[2].kill9();
    assert_eq!(publish(&mut publisher, "alerts", "last"), 0);
    loop {
        if next_payload(&mut s1) == "last" {
            break;
        }
    }
}

#[test]
fn spublish_stays_with_the_slot_owner_and_key_events_stay_local() {
    let cluster = Cluster::start(3);
    let channel = "shard-news";
    let owner = cluster.owner_of(channel);
    let other = (owner + 1) % 3;

    // SSUBSCRIBE / SPUBLISH elsewhere: -MOVED to the owner.
    let mut elsewhere = RespReader::new(cluster.nodes[other].raw());
    let owner_port = cluster.nodes[owner].port;
    for cmd in ["SSUBSCRIBE", "SPUBLISH"] {
        let args: &[&str] = if cmd == "SPUBLISH" {
            &[cmd, channel, "m"]
        } else {
            &[cmd, channel]
        };
        match send(&mut elsewhere, args) {
            Frame::Error(e) => {
                assert!(
                    e.starts_with("MOVED ") && e.ends_with(&format!(":{owner_port}")),
                    "{e}"
                )
            }
            f => panic!("{cmd}: expected MOVED, got {f:?}"),
        }
    }
    // A plain subscriber elsewhere, on the same name.
    send(&mut elsewhere, &["SUBSCRIBE", channel]);

    let mut sub = RespReader::new(cluster.nodes[owner].raw());
    send(&mut sub, &["SSUBSCRIBE", channel]);
    let mut at_owner = cluster.nodes[owner].client();
    let n: i64 = redis::cmd("SPUBLISH")
        .arg(channel)
        .arg("sharded")
        .query(&mut at_owner)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(raw_payload(&mut sub), ("smessage".into(), "sharded".into()));
    // Not broadcast: the plain subscriber elsewhere sees the PUBLISH sent
    // after it first (the same link would have carried it before).
    assert_eq!(publish(&mut at_owner, channel, "plain"), 0);
    assert_eq!(
        raw_payload(&mut elsewhere),
        ("message".into(), "plain".into())
    );

    // Keyspace notifications are each node's own.
    let events = "__keyevent@0__:set";
    for node in &cluster.nodes {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg("KEA")
            .query(&mut node.client())
            .unwrap();
    }
    let mut local = RespReader::new(cluster.nodes[owner].raw());
    send(&mut local, &["SUBSCRIBE", events]);
    let mut remote = RespReader::new(cluster.nodes[other].raw());
    send(&mut remote, &["SUBSCRIBE", events]);
    // The channel name's slot is the owner's: so is a key of that name.
    let _: () = redis::cmd("SET")
        .arg(channel)
        .arg("v")
        .query(&mut at_owner)
        .unwrap();
    assert_eq!(raw_payload(&mut local), ("message".into(), channel.into()));
    assert_eq!(publish(&mut at_owner, events, "marker"), 1);
    assert_eq!(
        raw_payload(&mut remote),
        ("message".into(), "marker".into())
    );
}
