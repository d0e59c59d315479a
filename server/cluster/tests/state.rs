//! The shared state: views, isolation, and each thread's cached copy.

use citadel_cluster::{Applied, ClusterState, Route, StaticEntry, StaticMembership, ThreadView};
use citadel_proto::cluster::{key_slot, Member, MembershipEvent};

fn entries(ports: &[u16]) -> Vec<StaticEntry> {
    ports
        .iter()
        .map(|p| StaticEntry::new(format!("127.0.0.1:{p}")))
        .collect()
}

#[test]
fn a_node_serves_its_slots_redirects_the_others_and_stops_when_isolated() {
    let me = Member::named("127.0.0.1:7001", None, 1);
    let state = ClusterState::new(&me);
    let mut thread = ThreadView::new(state.clone());
    // No view yet: down.
    assert_eq!(thread.current().route(0), Route::Down);

    let mut source = StaticMembership::new(me.clone());
    let event = source.view(&entries(&[7001, 7002, 7003])).unwrap();
    assert!(matches!(
        state.apply(event),
        Applied::View { members: 3, .. }
    ));
    let topology = thread.current();
    assert_eq!(topology.myself().unwrap().addr, "127.0.0.1:7001");
    let (mut local, mut moved) = (0, 0);
    for slot in 0..16384 {
        match topology.route(slot) {
            Route::Local => local += 1,
            Route::Moved(m) => {
                assert_ne!(m.id, me.id);
                moved += 1
            }
            Route::Down => panic!("slot {slot} down"),
        }
    }
    assert_eq!(local + moved, 16384);
    assert_eq!(local, topology.map.slot_counts()[topology.me.unwrap()]);
    assert!(topology.previous.is_some());

    let generation = thread.current().generation;
    state.apply(MembershipEvent::Isolated {
        reason: "lease lost".into(),
    });
    assert_eq!(thread.current().route(key_slot(b"k")), Route::Down);
    assert_eq!(thread.current().generation, generation + 1);

    // The next view with this node in it ends the isolation.
    let again = MembershipEvent::View(citadel_proto::cluster::MemberView::new(
        1,
        thread.current().map.members().to_vec(),
    ));
    assert!(matches!(state.apply(again), Applied::View { moved: 0, .. }));
    assert_ne!(thread.current().route(key_slot(b"k")), Route::Down);
}

#[test]
fn a_join_changes_owners_and_keeps_the_previous_map_for_hand_off() {
    let me = Member::named("127.0.0.1:7001", None, 1);
    let state = ClusterState::new(&me);
    let mut source = StaticMembership::new(me.clone());
    state.apply(source.view(&entries(&[7001, 7002, 7003])).unwrap());
    let before = state.snapshot();
    let applied = state.apply(source.view(&entries(&[7001, 7002, 7003, 7004])).unwrap());
    let Applied::View { moved, .. } = applied else {
        panic!("{applied:?}")
    };
    let after = state.snapshot();
    let mut handed = 0;
    for slot in 0..16384 {
        if let Some(prev) = after.previous_owner(slot) {
            assert_eq!(Some(prev), before.map.owner(slot));
            assert_eq!(after.map.owner(slot).unwrap().addr, "127.0.0.1:7004");
            handed += 1;
        }
    }
    assert_eq!(handed, moved);
    // The same list again changes nothing; an older view is ignored.
    assert_eq!(source.view(&entries(&[7001, 7002, 7003, 7004])), None);
    let stale = MembershipEvent::View(citadel_proto::cluster::MemberView::new(0, vec![]));
    assert_eq!(state.apply(stale), Applied::Stale);
}

#[test]
fn events_from_a_channel_are_applied_by_the_follower_thread() {
    let me = Member::named("127.0.0.1:7001", None, 1);
    let state = ClusterState::new(&me);
    let (tx, rx) = crossbeam::channel::unbounded();
    let follower = citadel_cluster::follow(state.clone(), rx).unwrap();
    let mut source = StaticMembership::new(me);
    tx.send(source.view(&entries(&[7001, 7002])).unwrap())
        .unwrap();
    drop(tx);
    follower.join().unwrap();
    assert_eq!(state.snapshot().map.members().len(), 2);
}

#[test]
fn a_newcomer_reads_its_slots_from_the_members_that_served_them_before_it() {
    let me = Member::named("127.0.0.1:7004", None, 1);
    let state = ClusterState::new(&me);
    let mut source = StaticMembership::new(me.clone());
    // Its first view already has it: the others' map is what moved to it.
    state.apply(source.view(&entries(&[7001, 7002, 7003, 7004])).unwrap());
    let now = state.snapshot();
    let window = std::time::Duration::from_secs(60);
    let mut handed = 0;
    for slot in 0..16384 {
        match now.handoff_source(slot, window, unix_ms()) {
            Some(prev) => {
                assert_eq!(now.route(slot), Route::Local);
                assert_ne!(prev.id, me.id);
                handed += 1;
            }
            None => assert_ne!(now.route(slot), Route::Local, "slot {slot}"),
        }
    }
    assert_eq!(handed, now.map.slot_counts()[now.me.unwrap()]);
    // Past the window, a miss is a miss.
    let slot = (0..16384).find(|&s| now.route(s) == Route::Local).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let short = std::time::Duration::from_millis(1);
    assert_eq!(now.handoff_source(slot, short, unix_ms()), None);
    // A member that left is no source (it is gone).
    state.apply(source.view(&entries(&[7002, 7003, 7004])).unwrap());
    let after = state.snapshot();
    for slot in 0..16384 {
        if let Some(prev) = after.handoff_source(slot, window, unix_ms()) {
            assert_ne!(prev.addr, "127.0.0.1:7001");
        }
    }
}

fn unix_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as u64)
}
