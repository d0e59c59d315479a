//! Geospatial commands against a real redis-server, byte for byte in RESP2
//! and RESP3: random point clouds (small ones packed, large ones paged),
//! searches by radius and by box from members and from coordinates, every
//! reply option, sorted and unsorted (the order Redis reads its 9 cells
//! in), COUNT with and without ANY, the STORE forms and their stored sets;
//! then the errors, in Redis's order.

use citadel_tests::differential::{Pair, Rng};

/// A uniform float in [lo, hi), with 6-9 significant digits.
fn uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * (rng.below(1_000_000_000) as f64 / 1e9)
}

fn f(v: f64) -> String {
    format!("{v}")
}

fn fill(pair: &mut Pair, rng: &mut Rng, points: usize, centre: (f64, f64), spread: f64) {
    let mut args = vec!["GEOADD".to_string(), "pts".to_string()];
    for i in 0..points {
        let lon = (centre.0 + uniform(rng, -spread, spread)).clamp(-180.0, 180.0);
        let lat = (centre.1 + uniform(rng, -spread, spread)).clamp(-85.0, 85.0);
        args.extend([f(lon), f(lat), format!("p{i}")]);
    }
    pair.same_strings(&args);
}

fn options(rng: &mut Rng) -> Vec<&'static str> {
    let mut opts = Vec::new();
    for (word, odds) in [("WITHDIST", 2), ("WITHCOORD", 3), ("WITHHASH", 3)] {
        if rng.below(odds) == 0 {
            opts.push(word);
        }
    }
    opts.push(["", "ASC", "DESC"][rng.below(3) as usize]);
    opts.retain(|w| !w.is_empty());
    opts
}

#[test]
fn random_geo_searches_match_redis() {
    let mut pair = Pair::start();
    let conn3 = pair.connect();
    pair.both(conn3, &["HELLO", "3"]);
    let mut rng = Rng(0x6e0_5ea2c);
    for round in 0..10 {
        pair.same_str(&["FLUSHALL"]);
        // 1,500 points make the sorted set paged.
        let points = [20, 200, 1500][round % 3];
        let centre = (
            uniform(&mut rng, -170.0, 170.0),
            uniform(&mut rng, -80.0, 80.0),
        );
        let spread = [0.01, 0.5, 5.0, 60.0][rng.below(4) as usize];
        fill(&mut pair, &mut rng, points, centre, spread);
        let conn = if round % 2 == 0 { 0 } else { conn3 };
        for _ in 0..25 {
            let (unit, meters) = [("m", 1.0), ("km", 1000.0), ("mi", 1609.34), ("ft", 0.3048)]
                [rng.below(4) as usize];
            let radius = f(uniform(&mut rng, 0.0, spread * 166_000.0) / meters);
            let member = format!("p{}", rng.below(points as u64));
            let lon = f(centre.0 + uniform(&mut rng, -spread, spread));
            let lat = f((centre.1 + uniform(&mut rng, -spread, spread)).clamp(-85.0, 85.0));
            let mut opts: Vec<String> = options(&mut rng).into_iter().map(String::from).collect();
            match rng.below(3) {
                0 => opts.extend(["COUNT".into(), (1 + rng.below(30)).to_string()]),
                1 => opts.extend([
                    "COUNT".into(),
                    (1 + rng.below(30)).to_string(),
                    "ANY".into(),
                ]),
                _ => {}
            }
            let with = |head: &[&str]| -> Vec<String> {
                head.iter()
                    .map(|s| s.to_string())
                    .chain(opts.iter().cloned())
                    .collect()
            };
            let queries = [
                with(&[
                    "GEOSEARCH",
                    "pts",
                    "FROMMEMBER",
                    &member,
                    "BYRADIUS",
                    &radius,
                    unit,
                ]),
                with(&[
                    "GEOSEARCH",
                    "pts",
                    "FROMLONLAT",
                    &lon,
                    &lat,
                    "BYBOX",
                    &radius,
                    &radius,
                    unit,
                ]),
                with(&["GEORADIUS", "pts", &lon, &lat, &radius, unit]),
                with(&["GEORADIUSBYMEMBER_RO", "pts", &member, &radius, unit]),
            ];
            for q in &queries {
                let args: Vec<&str> = q.iter().map(String::as_str).collect();
                pair.same_str_on(conn, &args);
            }
            let stores: [&[&str]; 2] = [
                &[
                    "GEOSEARCHSTORE",
                    "dst",
                    "pts",
                    "FROMMEMBER",
                    &member,
                    "BYRADIUS",
                    &radius,
                    unit,
                    "STOREDIST",
                ],
                &[
                    "GEORADIUS",
                    "pts",
                    &lon,
                    &lat,
                    &radius,
                    unit,
                    "ASC",
                    "COUNT",
                    "7",
                    "STORE",
                    "dst",
                ],
            ];
            for store in stores {
                pair.same_str_on(conn, store);
                pair.same_str_on(conn, &["ZRANGE", "dst", "0", "-1", "WITHSCORES"]);
            }
            let other = format!("p{}", rng.below(points as u64));
            pair.same_str_on(conn, &["GEODIST", "pts", &member, &other, unit]);
            pair.same_str_on(conn, &["GEOPOS", "pts", &member, "nosuch", &other]);
            pair.same_str_on(conn, &["GEOHASH", "pts", &member, "nosuch"]);
        }
    }
}

#[test]
fn geo_errors_and_edges_match_redis() {
    let mut pair = Pair::start();
    let conn3 = pair.connect();
    pair.both(conn3, &["HELLO", "3"]);
    pair.same_str(&["SET", "str", "x"]);
    let s = [
        "GEOADD",
        "Sicily",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
    ];
    pair.same_str(&s);
    let from = ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37"];
    #[rustfmt::skip]
    let cases: &[&[&str]] = &[
        &["GEOADD", "Sicily", "NX", "13.361389", "38.115556", "Palermo"],
        &["GEOADD", "Sicily", "XX", "CH", "13.5", "38.1", "Palermo"],
        &["GEOADD", "Sicily", "NX", "XX", "1", "1", "a"],
        &["GEOADD", "Sicily", "CH", "CH", "CH"],
        &["GEOADD", "Sicily", "1", "2", "a", "3"],
        &["GEOADD", "Sicily", "181", "0", "bad"],
        &["GEOADD", "Sicily", "0", "86", "bad"],
        &["GEOADD", "Sicily", "x", "0", "bad"],
        &["GEOADD", "Sicily", "1e400", "0", "bad"],
        &["GEOADD", "Sicily", "1e-400", "0", "bad"],
        &["GEOADD", "Sicily", "GT", "1", "1", "a"],
        &["GEOADD", "str", "1", "1", "a"],
        &["GEODIST", "Sicily", "Palermo", "Catania"],
        &["GEODIST", "Sicily", "Palermo", "Catania", "KM", "x"],
        &["GEODIST", "Sicily", "Palermo", "Catania", "yd"],
        &["GEODIST", "Sicily", "Palermo", "nope"],
        &["GEODIST", "nokey", "a", "b"],
        &["GEODIST", "str", "a", "b", "yd"],
        &["GEOPOS", "Sicily", "Palermo", "nope"],
        &["GEOPOS", "nokey", "a"],
        &["GEOPOS", "str", "a"],
        &["GEOHASH", "Sicily", "Palermo", "Catania", "nope"],
        &["GEOHASH", "str"],
        &["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHDIST", "WITHCOORD", "WITHHASH"],
        &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "1", "ANY"],
        &["GEORADIUS", "Sicily", "15", "37", "200", "km", "ANY"],
        &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "0"],
        &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "x"],
        &["GEORADIUS", "Sicily", "15", "37", "-1", "km"],
        &["GEORADIUS", "Sicily", "15", "37", "x", "km"],
        &["GEORADIUS", "Sicily", "190", "37", "1", "km"],
        &["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE"],
        &["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHDIST", "STORE", "d"],
        &["GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "STORE", "d"],
        &["GEORADIUS", "nokey", "15", "37", "200", "km", "STORE", "Sicily2"],
        &["GEORADIUS", "str", "190", "37", "200", "km"],
        &["GEORADIUSBYMEMBER", "Sicily", "nope", "200", "km"],
        &["GEORADIUSBYMEMBER", "nokey", "nope", "abc", "zz"],
        &["GEOSEARCH", "Sicily", "BYRADIUS", "200", "km"],
        &from,
        &["geosearch", "Sicily", "FROMLONLAT", "15", "37"],
        &["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km"],
        &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "BYBOX", "1", "1", "km"],
        &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "-1", "1", "km"],
        &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "1", "x", "km"],
        &["GEOSEARCH", "Sicily", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"],
        &["GEOSEARCH", "nokey", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"],
        &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STOREDIST"],
        &["GEOSEARCHSTORE", "d", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "WITHDIST"],
        &["GEOSEARCHSTORE", "d", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STOREDIST"],
        &["ZRANGE", "d", "0", "-1", "WITHSCORES"],
        &["GEOSEARCHSTORE", "d", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "m"],
        &["EXISTS", "d"],
        &["GEORADIUS", "Sicily", "15", "37", "20000", "km"],
        &["GEOSEARCH", "Sicily", "FROMLONLAT", "0", "0", "BYBOX", "40000", "40000", "km"],
    ];
    for case in cases {
        pair.same_str(case);
        pair.same_str_on(conn3, case);
    }
    pair.same_str(&[
        "COMMAND",
        "GETKEYS",
        "GEORADIUS",
        "src",
        "1",
        "2",
        "3",
        "km",
        "STORE",
        "dst",
    ]);
    pair.same_str(&[
        "COMMAND",
        "GETKEYS",
        "GEOSEARCHSTORE",
        "dst",
        "src",
        "FROMMEMBER",
        "m",
    ]);
}
