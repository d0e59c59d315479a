use super::*;

#[test]
fn parses_fds_paths_and_round_trips() {
    let hs = Handshake::parse("fd:3,fd:4;/dev/shm/a.req,/dev/shm/a.rep", "5,6;9,10", None).unwrap();
    assert_eq!(hs.max_attempts, DEFAULT_MAX_ATTEMPTS);
    assert_eq!(hs.pairs[0].requests, RingSource::Fd(3));
    assert_eq!(
        hs.pairs[1].replies,
        RingSource::Path("/dev/shm/a.rep".into())
    );
    assert_eq!(hs.pairs[1].request_eventfd, 9);
    let env = hs.to_env();
    assert_eq!(env.len(), 3, "no outputs, no variable");
    let again = Handshake::parse(&env[0].1, &env[1].1, Some(&env[2].1)).unwrap();
    assert_eq!(again, hs);
}

#[test]
fn outputs_round_trip_per_pair() {
    let mut hs = Handshake::parse("fd:3,fd:4;fd:5,fd:6", "7,8;9,10", None).unwrap();
    hs.set_outputs("fd:11@12|/dev/shm/x.req@13;").unwrap();
    assert_eq!(hs.pairs[0].outputs.len(), 2);
    assert_eq!(
        hs.pairs[0].outputs[1],
        OutputSpec {
            ring: RingSource::Path("/dev/shm/x.req".into()),
            eventfd: 13
        }
    );
    assert!(hs.pairs[1].outputs.is_empty());
    let env = hs.to_env();
    let mut again = Handshake::parse(&env[0].1, &env[1].1, Some(&env[2].1)).unwrap();
    again.set_outputs(&env[3].1).unwrap();
    assert_eq!(again, hs);
    assert!(hs.set_outputs("fd:11@12").is_err(), "one list per pair");
    assert!(hs.set_outputs("fd:11;").is_err(), "ring without eventfd");
}

#[test]
fn rejects_malformed_values() {
    assert!(matches!(
        Handshake::parse("", "1,2", None),
        Err(HandshakeError::Malformed { .. })
    ));
    assert!(matches!(
        Handshake::parse("fd:3", "1,2", None),
        Err(HandshakeError::Malformed { .. })
    ));
    assert!(matches!(
        Handshake::parse("fd:3,fd:4", "1,x", None),
        Err(HandshakeError::Malformed { .. })
    ));
    assert!(matches!(
        Handshake::parse("fd:3,fd:4;fd:5,fd:6", "1,2", None),
        Err(HandshakeError::CountMismatch {
            rings: 2,
            other: 1,
            ..
        })
    ));
    assert!(matches!(
        Handshake::parse("fd:3,fd:4", "1,2", Some("0")),
        Err(HandshakeError::Malformed { .. })
    ));
    assert_eq!(
        Handshake::parse("fd:3,fd:4", "1,2", Some("5"))
            .unwrap()
            .max_attempts,
        5
    );
}
