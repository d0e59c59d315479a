//! The region file end to end through the public API: a writer records,
//! a reader in the same process (as another process would) sees it, a
//! reopen keeps the counters, a foreign or older file is replaced.

use std::path::Path;

use citadel_telemetry::layout::Field;
use citadel_telemetry::*;

const GEOMETRY: Geometry = Geometry {
    cores: 2,
    commands: 8,
    hot_keys: 4,
    info_bytes: 1024,
};

fn write_header_word(path: &Path, field: Field, value: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(field as u64 * 8)).unwrap();
    f.write_all(&value.to_le_bytes()).unwrap();
}

#[test]
fn a_reader_sees_what_each_core_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.stats");
    let (region, opened) = Region::open(&path, GEOMETRY).unwrap();
    assert!(matches!(opened, Opened::Created(_)));
    region.name_command(1, "get");
    region.name_command(2, "set");
    region.name_priority(3, "reads");
    let delay = region.reason("queueing delay").unwrap();
    assert_eq!(region.reason("queueing delay"), Some(delay));
    let (c0, c1) = (region.core(0).unwrap(), region.core(1).unwrap());
    assert!(region.core(2).is_none());
    c0.command(1, 500, false);
    c1.command(1, 5_000, true);
    c1.command(2, 10_000_000_000, false);
    c0.command(99, 1, false); // past the table: ignored
                              // Three GETs counted at once, as three `command` calls would.
    c0.commands(1, 2, 3_000, 0, 0);
    c0.commands(1, 1, 0, 0, 1);
    c0.commands(99, 1, 1, 0, 0); // past the table: ignored
    c0.shed(Layer::Core, delay, 3);
    region.shared().shed(Layer::Core, delay, 3);
    region.shared().shed(
        Layer::Connection,
        region.reason("per-address").unwrap(),
        200,
    );
    c1.set_gauge(CoreGauge::QueueDelayNanos, 12_000_000);
    region.publish_hot_keys(&[(b"hot\"key".as_slice(), 99.5), (&[b'k'; 300], 3.0)]);
    region.publish_info("# Stats\r\nkeyspace_hits:7\r\n");

    let s = Reader::open(&path).unwrap().snapshot();
    assert_eq!(s.writer_pid, u64::from(std::process::id()));
    let get = s.commands.iter().find(|c| c.name == "get").unwrap();
    assert_eq!((get.calls, get.nanos, get.failed), (5, 8_500, 1));
    assert_eq!((get.buckets[0], get.buckets[1], get.buckets[3]), (3, 1, 1));
    let set = s.commands.iter().find(|c| c.name == "set").unwrap();
    assert_eq!(set.buckets[15], 1);
    assert_eq!(s.commands.len(), 2);
    assert_eq!((s.cores[0].commands, s.cores[1].commands), (4, 2));
    assert_eq!(s.cores[1].queue_delay_nanos, 12_000_000);
    let core = s.shed.iter().find(|c| c.layer == Layer::Core).unwrap();
    assert_eq!((core.count, core.priority), (2, 3));
    assert_eq!(
        (core.reason.as_str(), core.priority_name.as_str()),
        ("queueing delay", "reads")
    );
    let conn = s
        .shed
        .iter()
        .find(|c| c.layer == Layer::Connection)
        .unwrap();
    assert_eq!(
        (conn.priority, conn.reason.as_str()),
        (PRIORITIES as u8 - 1, "per-address")
    );
    assert_eq!(s.hot_keys.len(), 2);
    assert_eq!(s.hot_keys[0].key, b"hot\"key");
    assert_eq!(s.hot_keys[1].key.len(), 128);
    assert_eq!(s.info_field("keyspace_hits"), Some("7"));
    assert_eq!(s, region.snapshot());

    let text = exposition::render(&s);
    assert!(
        text.contains("citadel_commands_total{command=\"get\"} 5\n"),
        "{text}"
    );
    assert!(
        text.contains("citadel_command_duration_seconds_bucket{command=\"get\",le=\"+Inf\"} 5\n")
    );
    assert!(text.contains("citadel_command_duration_seconds_count{command=\"set\"} 1\n"));
    assert!(text.contains("layer=\"core\",reason=\"queueing delay\",priority=\"3\""));
    assert!(text.contains("citadel_hot_key_rate{key=\"hot\\\"key\",rank=\"1\"} 99.5\n"));
    assert!(text.contains("citadel_info_keyspace_hits 7\n"));
}

#[test]
fn a_reopen_after_restart_keeps_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.stats");
    {
        let (region, _) = Region::open(&path, GEOMETRY).unwrap();
        region.name_command(1, "get");
        region.core(0).unwrap().command(1, 100, false);
        let r = region.reason("ring full").unwrap();
        region.core(1).unwrap().shed(Layer::Downstream, r, 0);
    }
    let (region, opened) = Region::open(&path, GEOMETRY).unwrap();
    assert_eq!(opened, Opened::Reused);
    // The reason keeps its slot: new sheds add to the old count.
    let r = region.reason("ring full").unwrap();
    region.core(1).unwrap().shed(Layer::Downstream, r, 0);
    region.core(0).unwrap().command(1, 100, false);
    let s = region.snapshot();
    assert_eq!(s.reopens, 1);
    assert_eq!(s.commands[0].calls, 2);
    assert_eq!(s.total_shed(), 2);
}

#[test]
fn another_layout_version_is_refused_by_readers_and_replaced_by_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.stats");
    let (region, _) = Region::open(&path, GEOMETRY).unwrap();
    region.core(0).unwrap().command(1, 100, false);
    drop(region);
    write_header_word(&path, Field::Version, LAYOUT_VERSION + 1);
    let err = Reader::open(&path).err().unwrap();
    assert!(
        matches!(err, ReadError::Layout { source: LayoutError::Version { found, expected }, .. }
            if found == LAYOUT_VERSION + 1 && expected == LAYOUT_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains("layout version"), "{err}");
    let (region, opened) = Region::open(&path, GEOMETRY).unwrap();
    assert!(
        matches!(&opened, Opened::Created(why) if why.contains("version")),
        "{opened:?}"
    );
    assert!(region.snapshot().commands.is_empty());
    assert!(Reader::open(&path).is_ok());
}

#[test]
fn another_geometry_or_a_foreign_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.stats");
    Region::open(&path, GEOMETRY).unwrap();
    let more_cores = Geometry {
        cores: 3,
        ..GEOMETRY
    };
    let (_, opened) = Region::open(&path, more_cores).unwrap();
    assert!(
        matches!(&opened, Opened::Created(why) if why.contains("geometry")),
        "{opened:?}"
    );

    std::fs::write(&path, vec![7u8; 4096]).unwrap();
    assert!(matches!(
        Reader::open(&path),
        Err(ReadError::Layout {
            source: LayoutError::BadMagic,
            ..
        })
    ));
    std::fs::write(&path, b"short").unwrap();
    assert!(matches!(
        Reader::open(&path),
        Err(ReadError::Layout {
            source: LayoutError::TooSmall { .. },
            ..
        })
    ));
    let (_, opened) = Region::open(&path, GEOMETRY).unwrap();
    assert!(matches!(opened, Opened::Created(_)));

    // A header whose sizes are corrupt is refused, not trusted.
    write_header_word(&path, Field::Cores, u64::MAX);
    assert!(matches!(
        Reader::open(&path),
        Err(ReadError::Layout {
            source: LayoutError::Inconsistent(_),
            ..
        })
    ));
    assert!(Reader::open(&dir.path().join("missing")).is_err());
}
