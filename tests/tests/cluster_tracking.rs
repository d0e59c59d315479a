//! Client-side caching across nodes in proxy mode: a RESP3 tracking client
//! on node A reads keys other nodes own through A's forwarding; a write to
//! such a key on its owner, directly or forwarded by A, reaches the client
//! as an invalidation push, and so does the loss of the link that read it
//! (its owner killed). OPTIN reads are tracked only after CLIENT CACHING
//! yes, as on one node.

use std::time::Duration;

use citadel_tests::cluster::Cluster;
use citadel_tests::redis::Commands;
use citadel_tests::reference::encode_command;
use citadel_tests::RespReader;

/// Long enough for a loaded machine; a push normally comes at once.
const PATIENCE: Duration = Duration::from_secs(10);

fn call(c: &mut RespReader, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.send(&encode_command(&args));
    String::from_utf8_lossy(&c.raw_reply().expect("reply")).into_owned()
}

fn invalidate(key: &str) -> String {
    format!(
        ">2\r\n$10\r\ninvalidate\r\n*1\r\n${}\r\n{key}\r\n",
        key.len()
    )
}

/// The next frame on `c` (a push here), waiting at most `PATIENCE`.
fn next_push(c: &mut RespReader) -> String {
    c.set_read_timeout(Some(PATIENCE));
    let frame = c.raw_reply().expect("an invalidation push");
    c.set_read_timeout(None);
    String::from_utf8_lossy(&frame).into_owned()
}

/// A RESP3 client of node `i` with `CLIENT TRACKING on` and `options`.
fn tracker(cluster: &Cluster, i: usize, options: &[&str]) -> RespReader {
    let mut t = RespReader::new(cluster.nodes[i].raw());
    call(&mut t, &["HELLO", "3"]);
    let mut on = vec!["CLIENT", "TRACKING", "ON"];
    on.extend_from_slice(options);
    assert_eq!(call(&mut t, &on), "+OK\r\n");
    t
}

/// A key `prefix:N` that node `owner` owns.
fn key_on(cluster: &Cluster, owner: usize, prefix: &str) -> String {
    (0..1000)
        .map(|i| format!("{prefix}:{i}"))
        .find(|k| cluster.owner_of(k) == owner)
        .expect("a key of every node")
}

#[test]
fn a_forwarded_read_is_invalidated_by_writes_on_its_owner_and_through_the_proxy() {
    let cluster = Cluster::start_proxy(3, &[]);
    let (k, j, here) = (
        key_on(&cluster, 1, "k"),
        key_on(&cluster, 2, "j"),
        key_on(&cluster, 0, "h"),
    );
    let mut owner = cluster.nodes[1].client();
    let _: () = owner.set(&k, "v1").unwrap();
    let mut t = tracker(&cluster, 0, &[]);
    assert_eq!(call(&mut t, &["GET", &k]), "$2\r\nv1\r\n");

    // A write on the owner, directly.
    let _: () = owner.set(&k, "v2").unwrap();
    assert_eq!(next_push(&mut t), invalidate(&k));
    // One invalidation per read, as on one node: read again to track again.
    assert_eq!(call(&mut t, &["GET", &k]), "$2\r\nv2\r\n");

    // A write forwarded by A for another client of A.
    let mut other = cluster.nodes[0].client();
    let _: () = other.set(&k, "v3").unwrap();
    assert_eq!(next_push(&mut t), invalidate(&k));

    // A split MGET over three nodes: each key's owner invalidates it.
    let reply = call(&mut t, &["MGET", &k, &j, &here]);
    assert!(reply.starts_with("*3\r\n$2\r\nv3\r\n"), "{reply}");
    let _: () = cluster.nodes[2].client().set(&j, "w").unwrap();
    assert_eq!(next_push(&mut t), invalidate(&j));
    let _: () = owner.del(&k).unwrap();
    assert_eq!(next_push(&mut t), invalidate(&k));
    let _: () = other.set(&here, "x").unwrap();
    assert_eq!(next_push(&mut t), invalidate(&here));
}

#[test]
fn losing_the_link_invalidates_what_was_read_through_it() {
    let mut cluster = Cluster::start_proxy(3, &[]);
    let (k, j) = (key_on(&cluster, 1, "k"), key_on(&cluster, 2, "j"));
    let mut t = tracker(&cluster, 0, &[]);
    assert_eq!(call(&mut t, &["GET", &k]), "_\r\n");
    assert_eq!(call(&mut t, &["GET", &j]), "_\r\n");
    cluster.nodes[1].kill9();
    // Only what was read from the killed node (nothing else before PONG).
    assert_eq!(next_push(&mut t), invalidate(&k));
    assert_eq!(call(&mut t, &["PING"]), "+PONG\r\n");
    let _: () = cluster.nodes[2].client().set(&j, "w").unwrap();
    assert_eq!(next_push(&mut t), invalidate(&j));
}

#[test]
fn optin_reads_through_the_proxy_are_tracked_after_caching_yes() {
    let cluster = Cluster::start_proxy(2, &[]);
    let (k, o) = (key_on(&cluster, 1, "k"), key_on(&cluster, 1, "o"));
    let mut owner = cluster.nodes[1].client();
    let mut t = tracker(&cluster, 0, &["OPTIN"]);
    call(&mut t, &["GET", &o]);
    let _: () = owner.set(&o, "1").unwrap();
    assert_eq!(call(&mut t, &["CLIENT", "CACHING", "YES"]), "+OK\r\n");
    assert_eq!(call(&mut t, &["GET", &k]), "_\r\n");
    let _: () = owner.set(&k, "2").unwrap();
    // The first push is k's: the read of o, without CACHING YES, is not
    // tracked for this client (its owner tracks it for the link).
    assert_eq!(next_push(&mut t), invalidate(&k));
}

#[test]
fn a_map_change_invalidates_what_was_read_through_the_links() {
    let proxy = ["--cluster-proxy", "yes"];
    let mut cluster = Cluster::start_with(3, &proxy);
    let (k, j) = (key_on(&cluster, 1, "k"), key_on(&cluster, 2, "j"));
    let mut t = tracker(&cluster, 0, &[]);
    call(&mut t, &["GET", &k]);
    call(&mut t, &["GET", &j]);
    // A newcomer may take either key's slot, and its writes would never
    // come back on the links that read them: both are invalidated.
    cluster.join_one_with(&proxy);
    let mut pushes = vec![next_push(&mut t), next_push(&mut t)];
    pushes.sort();
    let mut want = vec![invalidate(&k), invalidate(&j)];
    want.sort();
    assert_eq!(pushes, want);
}
