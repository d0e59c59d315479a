//! The generic commands on paged collections (lists, hashes, sets and
//! sorted sets of thousands of elements) against a real redis-server:
//! COPY and RENAME copy a paged collection's pages byte for byte under
//! the new key (no whole read: INFO's `collection_whole_reads` stays
//! put, and the copy takes exactly the source's bytes), and the copy is
//! a value of its own afterwards.

use citadel_tests::differential::{Pair, Rng};
use citadel_tests::redis;

/// Paged collections read whole so far (the field must exist).
fn whole_reads(pair: &mut Pair) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut pair.citadel.client())
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("collection_whole_reads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("INFO stats has collection_whole_reads")
}

fn memory_usage(pair: &mut Pair, key: &str) -> u64 {
    redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .query(&mut pair.citadel.client())
        .unwrap()
}

/// One of each type, grown element by element batch (so each took its
/// paged layout from edits, not from one build).
fn fill(pair: &mut Pair, rng: &mut Rng) {
    for batch in 0..12 {
        let cmd = if batch % 3 == 0 { "LPUSH" } else { "RPUSH" };
        let mut args = vec![cmd.to_string(), "l0".to_string()];
        args.extend((0..500).map(|i| format!("e{batch}-{i}")));
        pair.same_strings(&args);
    }
    for batch in 0..15 {
        let mut hset = vec!["HSET".to_string(), "h0".to_string()];
        let mut sadd = vec!["SADD".to_string(), "s0".to_string()];
        let mut zadd = vec!["ZADD".to_string(), "z0".to_string()];
        for i in 0..200 {
            let n = batch * 200 + i;
            hset.extend([format!("f{n}"), format!("v{}", rng.below(1000))]);
            sadd.push(format!("m{n}"));
            zadd.extend([rng.below(5000).to_string(), format!("m{n}")]);
        }
        pair.same_strings(&hset);
        pair.same_strings(&sadd);
        pair.same_strings(&zadd);
    }
}

/// The value at `key`, compared with Redis's through reads that do not
/// read it whole (ranges, single members).
fn same_value(pair: &mut Pair, key: &str, kind: &str) {
    match kind {
        "list" => {
            pair.same_str(&["LLEN", key]);
            pair.same_str(&["LRANGE", key, "0", "-1"]);
        }
        "hash" => {
            pair.same_str(&["HLEN", key]);
            for n in (0..3000).step_by(97) {
                pair.same_str(&["HGET", key, &format!("f{n}")]);
            }
        }
        "set" => {
            pair.same_str(&["SCARD", key]);
            for n in (0..3000).step_by(97) {
                pair.same_str(&["SISMEMBER", key, &format!("m{n}")]);
            }
        }
        _ => {
            pair.same_str(&["ZCARD", key]);
            pair.same_str(&["ZRANGE", key, "0", "-1", "WITHSCORES"]);
        }
    }
}

/// An edit of `key` (to check a copy and its source are apart).
fn edit(pair: &mut Pair, key: &str, kind: &str) {
    match kind {
        "list" => pair.same_str(&["RPOP", key, "3"]),
        "hash" => pair.same_str(&["HSET", key, "f5", "changed", "new", "1"]),
        "set" => pair.same_str(&["SREM", key, "m5", "m6"]),
        _ => pair.same_str(&["ZADD", key, "-1", "m5", "7", "new"]),
    };
}

#[test]
fn copy_and_rename_copy_pages_without_reading_whole() {
    let mut pair = Pair::start();
    let mut rng = Rng(0x00c0_b1e5);
    fill(&mut pair, &mut rng);
    pair.same_str(&["EXPIRE", "z0", "1000"]);
    let before = whole_reads(&mut pair);
    let kinds = [
        ("l0", "list"),
        ("h0", "hash"),
        ("s0", "set"),
        ("z0", "zset"),
    ];
    for (key, kind) in kinds {
        pair.same_str(&["OBJECT", "ENCODING", key]);
        // (Names of one length: a page's key holds its owner's.)
        let copied = key.replace('0', "c");
        let moved = key.replace('0', "m");
        pair.same_str(&["COPY", key, &copied]);
        let source_bytes = memory_usage(&mut pair, key);
        assert_eq!(
            memory_usage(&mut pair, &copied),
            source_bytes,
            "a {kind}'s copy has the source's pages"
        );
        pair.same_str(&["RENAME", &copied, &moved]);
        pair.same_str(&["EXISTS", &copied]);
        assert_eq!(memory_usage(&mut pair, &moved), source_bytes);
        // Onto an existing paged value: refused, then replaced.
        pair.same_str(&["COPY", key, &moved]);
        pair.same_str(&["COPY", key, &moved, "REPLACE"]);
        pair.same_str(&["RENAMENX", key, &moved]);
        pair.same_str(&["TTL", &moved]);
    }
    assert_eq!(
        whole_reads(&mut pair),
        before,
        "COPY or RENAME read a paged collection whole"
    );
    for (key, kind) in kinds {
        let moved = key.replace('0', "m");
        edit(&mut pair, &moved, kind);
        same_value(&mut pair, key, kind);
        same_value(&mut pair, &moved, kind);
    }
    // The counter counts what does read whole.
    let before = whole_reads(&mut pair);
    pair.same_str(&["SINTERCARD", "2", "s0", "sm"]);
    assert_eq!(whole_reads(&mut pair), before + 2);
}

#[test]
fn zrangestore_of_a_paged_set_reads_its_range() {
    let mut pair = Pair::start();
    let mut rng = Rng(0x0005_707e);
    fill(&mut pair, &mut rng);
    pair.same_str(&["SET", "d", "a string"]);
    let before = whole_reads(&mut pair);
    let ranges: &[&[&str]] = &[
        &["0", "9"],
        &["-20", "-1", "REV"],
        &["100", "(2000", "BYSCORE", "LIMIT", "5", "40"],
        &["(4000", "-inf", "BYSCORE", "REV", "LIMIT", "0", "7"],
        &["0x100", "0x1p9", "BYSCORE"],
        &["0", "-1"],
        &["7", "3"],
    ];
    for range in ranges {
        let mut args = vec!["ZRANGESTORE", "d", "z0"];
        args.extend_from_slice(range);
        pair.same_str(&args);
        pair.same_str(&["ZRANGE", "d", "0", "-1", "WITHSCORES"]);
        pair.same_str(&["TYPE", "d"]);
    }
    // Onto its own source, and a big result onto a paged destination.
    pair.same_str(&["ZRANGESTORE", "d", "z0", "0", "-1"]);
    pair.same_str(&["ZRANGESTORE", "d", "z0", "100", "2999"]);
    pair.same_str(&["ZRANGESTORE", "z0", "z0", "10", "-10"]);
    pair.same_str(&["ZRANGE", "d", "0", "-1", "WITHSCORES"]);
    pair.same_str(&["ZRANGE", "z0", "0", "-1", "WITHSCORES"]);
    assert_eq!(
        whole_reads(&mut pair),
        before,
        "ZRANGESTORE read a paged sorted set whole"
    );
    // A lex range over mixed scores is not one run of ranks: read whole.
    pair.same_str(&["ZRANGESTORE", "d", "z0", "[m1", "(m2", "BYLEX"]);
    pair.same_str(&["ZRANGE", "d", "0", "-1"]);
    assert_eq!(whole_reads(&mut pair), before + 1);
    // Another type at the source.
    pair.same_str(&["ZRANGESTORE", "d", "h0", "0", "1"]);
}

#[test]
fn geosearchstore_of_a_paged_set_reads_its_cells() {
    let mut pair = Pair::start();
    let mut rng = Rng(0x0000_9e05);
    for batch in 0..15 {
        let mut geoadd = vec!["GEOADD".to_string(), "g".to_string()];
        for i in 0..200 {
            let lon = rng.below(20_000) as f64 / 1000.0 - 10.0;
            let lat = rng.below(20_000) as f64 / 1000.0 + 40.0;
            geoadd.extend([lon.to_string(), lat.to_string(), format!("p{batch}-{i}")]);
        }
        pair.same_strings(&geoadd);
    }
    pair.same_str(&["OBJECT", "ENCODING", "g"]);
    pair.same_str(&["SET", "d", "a string"]);
    let before = whole_reads(&mut pair);
    let searches: &[&[&str]] = &[
        &["FROMLONLAT", "0", "50", "BYRADIUS", "100", "km", "ASC"],
        &["FROMLONLAT", "3", "45", "BYBOX", "400", "300", "km", "DESC"],
        &["FROMMEMBER", "p3-7", "BYRADIUS", "150", "km", "COUNT", "9"],
        &[
            "FROMLONLAT",
            "1",
            "52",
            "BYRADIUS",
            "500",
            "km",
            "COUNT",
            "20",
            "ANY",
        ],
        &[
            "FROMLONLAT",
            "-5",
            "55",
            "BYBOX",
            "90",
            "90",
            "mi",
            "STOREDIST",
        ],
        &["FROMLONLAT", "120", "-30", "BYRADIUS", "10", "km"],
        &["FROMLONLAT", "0", "50", "BYRADIUS", "3000", "km"],
    ];
    for search in searches {
        let mut args = vec!["GEOSEARCHSTORE", "d", "g"];
        args.extend_from_slice(search);
        pair.same_str(&args);
        pair.same_str(&["ZRANGE", "d", "0", "-1", "WITHSCORES"]);
        pair.same_str(&["TYPE", "d"]);
    }
    // GEORADIUS's STORE, and onto its own source.
    let radius = ["GEORADIUS", "g", "2", "48", "200", "km", "STORE", "d"];
    pair.same_str(&radius);
    pair.same_str(&["ZRANGE", "d", "0", "-1", "WITHSCORES"]);
    let own = ["GEOSEARCHSTORE", "g", "g", "FROMLONLAT", "0", "50"];
    pair.same_str(&[&own[..], &["BYRADIUS", "800", "km"]].concat());
    pair.same_str(&["ZRANGE", "g", "0", "-1", "WITHSCORES"]);
    assert_eq!(
        whole_reads(&mut pair),
        before,
        "GEOSEARCHSTORE read a paged sorted set whole"
    );
    // Missing and mistyped sources.
    pair.same_str(&[
        "GEOSEARCHSTORE",
        "d",
        "nope",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "1",
        "km",
    ]);
    pair.same_str(&["EXISTS", "d"]);
    pair.same_str(&[
        "GEOSEARCHSTORE",
        "d",
        "d",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "1",
        "km",
    ]);
}

#[test]
fn dump_of_a_paged_sorted_set_reads_its_tree() {
    let mut pair = Pair::start();
    let mut rng = Rng(0x000d_0a9e);
    fill(&mut pair, &mut rng);
    let before = whole_reads(&mut pair);
    let payload: Vec<u8> = redis::cmd("DUMP")
        .arg("z0")
        .query(&mut pair.citadel.client())
        .unwrap();
    assert_eq!(
        whole_reads(&mut pair),
        before,
        "DUMP read a paged sorted set whole"
    );
    // Redis and Citadel both restore it as the set.
    pair.same(&[b"RESTORE", b"zr", b"0", &payload]);
    pair.same_str(&["ZRANGE", "zr", "0", "-1", "WITHSCORES"]);
    pair.same_str(&["ZRANGE", "z0", "0", "-1", "WITHSCORES"]);
    // The other paged kinds are still dumped (read whole).
    let list: Vec<u8> = redis::cmd("DUMP")
        .arg("l0")
        .query(&mut pair.citadel.client())
        .unwrap();
    pair.same(&[b"RESTORE", b"lr", b"0", &list]);
    pair.same_str(&["LRANGE", "lr", "0", "-1"]);
}
