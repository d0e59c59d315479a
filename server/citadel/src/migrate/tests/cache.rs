//! The connection cache: a worker idle for its idle time closes its
//! connection and leaves; past MAX_CACHED targets a job's connection is
//! not kept.

use super::*;

/// Long enough that a held job never times out while the test runs.
const HELD: Duration = Duration::from_secs(60);
/// Short, so that the idle close comes soon.
const SOON: Duration = Duration::from_millis(100);

#[test]
fn an_idle_connection_is_closed_and_the_next_job_connects_afresh() {
    let t = target(redis_like());
    let (m, rx) = migrator_idling(SOON);
    let first = run(&m, &rx, job(t.port, 2, &["a"], None));
    assert_eq!(first.result, Ok(()));
    wait_until("the idle connection is closed", || t.closed(0));
    assert!(cached(&m).is_empty(), "the idle worker left the map");
    let again = run(&m, &rx, job(t.port, 2, &["b"], None));
    assert_eq!(again.result, Ok(()));
    assert_eq!(again.restored, vec![true]);
    let seen = t.seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "a fresh connection");
    assert_eq!(names(&seen[0].commands), ["SELECT", "RESTORE"]);
    // Same database, yet SELECTed again: the new connection's is unknown.
    assert_eq!(names(&seen[1].commands), ["SELECT", "RESTORE"]);
    assert_eq!(seen[1].commands[0], [&b"SELECT"[..], b"2"]);
    assert_eq!(seen[1].commands[1][1], b"b");
}

/// A job whose target holds its reply until told.
fn held_job(t: &Scripted) -> Job {
    let mut j = job(t.port, 0, &["k"], None);
    j.timeout = HELD;
    j
}

#[test]
fn past_the_cap_a_connection_is_closed_after_its_job_until_a_cached_one_idles_out() {
    let (m, rx) = migrator_idling(SOON);
    // MAX_CACHED targets whose workers are busy (so none idles out).
    let held: Vec<(Scripted, Arc<Gate>)> = (0..MAX_CACHED).map(|_| gated()).collect();
    for (t, _) in &held {
        m.submit(held_job(t));
    }
    for (t, _) in &held {
        wait_until("each held RESTORE arrived", || {
            let seen = t.seen.lock().unwrap();
            seen.first().is_some_and(|c| c.commands.len() == 2)
        });
    }
    let kept: std::collections::BTreeSet<String> = held.iter().map(|(t, _)| t.name()).collect();
    assert_eq!(cached(&m), kept);

    // One more target: answered, then its connection closed.
    let extra = target(redis_like());
    let outcome = run(&m, &rx, job(extra.port, 0, &["a", "b"], None));
    assert_eq!(outcome.result, Ok(()));
    assert_eq!(outcome.restored, vec![true, true]);
    wait_until("the uncached connection is closed", || extra.closed(0));
    assert_eq!(cached(&m), kept, "not kept");
    for (t, _) in &held {
        assert!(!t.closed(0), "a cached connection stays open");
        assert_eq!(t.connections(), 1);
    }

    // One of them idles out: a new target is kept again.
    let (first, gate) = &held[0];
    gate.open();
    let done = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(done.outcome.result, Ok(()));
    wait_until("the idle one is closed", || first.closed(0));
    assert!(!cached(&m).contains(&first.name()), "it left the map");
    let (late, late_gate) = gated();
    m.submit(held_job(&late));
    let mut now_kept = kept.clone();
    now_kept.remove(&first.name());
    now_kept.insert(late.name());
    assert_eq!(cached(&m), now_kept, "the new target is kept");
    wait_until("its RESTORE arrived", || {
        let seen = late.seen.lock().unwrap();
        seen.first().is_some_and(|c| c.commands.len() == 2)
    });

    // Let every held job finish: all answered, every connection closed.
    late_gate.open();
    held.iter().for_each(|(_, g)| g.open());
    for _ in 0..MAX_CACHED {
        let done = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(done.outcome.result, Ok(()));
    }
    wait_until("every worker idled out", || cached(&m).is_empty());
    wait_until("every connection is closed", || {
        late.closed(0) && held.iter().all(|(t, _)| t.closed(0))
    });
}
