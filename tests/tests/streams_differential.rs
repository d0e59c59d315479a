//! Streams against a real redis-server: seeded random XADD (explicit,
//! `ms-*` IDs, MAXLEN/MINID with = and ~ and LIMIT), XDEL, XTRIM, XRANGE,
//! XREVRANGE, XREAD and XLEN, byte for byte in
//! RESP2 and RESP3; then the errors. Streams grow past Redis's 100-entry
//! node, so whole-node trimming (`~`) is compared too.

use citadel_tests::differential::{Pair, Rng};

#[test]
fn random_stream_commands_match_redis() {
    let mut pair = Pair::start();
    let conn3 = pair.connect();
    pair.both(conn3, &["HELLO", "3"]);
    let mut rng = Rng(0x57_2ea3);
    let mut ms = 1u64;
    for _ in 0..3000 {
        let key = if rng.below(4) == 0 { "s2" } else { "s" };
        let id = |rng: &mut Rng, ms: u64| format!("{}-{}", rng.below(ms + 2), rng.below(3));
        let op = rng.below(20);
        let cmd: Vec<String> = match op {
            0..=8 => {
                ms += rng.below(3);
                let mut c = vec!["XADD".to_string(), key.into()];
                match rng.below(6) {
                    0 => c.extend(["MAXLEN".into(), "~".into(), rng.below(300).to_string()]),
                    1 => c.extend(["MAXLEN".into(), rng.below(300).to_string()]),
                    2 => c.extend(["MINID".into(), "=".into(), id(&mut rng, ms)]),
                    3 => c.extend([
                        "MINID".into(),
                        "~".into(),
                        id(&mut rng, ms),
                        "LIMIT".into(),
                        rng.below(250).to_string(),
                    ]),
                    _ => {}
                }
                c.push(if rng.below(3) == 0 {
                    format!("{ms}-*")
                } else {
                    format!("{ms}-{}", rng.below(4))
                });
                for f in 0..1 + rng.below(3) {
                    c.push(format!("f{f}"));
                    c.push("v".repeat(rng.below(4) as usize));
                }
                c
            }
            9 | 10 => {
                let mut c = vec!["XDEL".to_string(), key.into()];
                (0..1 + rng.below(4)).for_each(|_| c.push(id(&mut rng, ms)));
                c
            }
            11 => vec![
                "XTRIM".into(),
                key.into(),
                "MAXLEN".into(),
                "~".into(),
                rng.below(400).to_string(),
            ],
            12 => vec!["XTRIM".into(), key.into(), "MINID".into(), id(&mut rng, ms)],
            13 | 14 => {
                let (a, b) = (id(&mut rng, ms), id(&mut rng, ms));
                let ex = |rng: &mut Rng, s: String| {
                    if rng.below(3) == 0 {
                        format!("({s}")
                    } else {
                        s
                    }
                };
                let (a, b) = (ex(&mut rng, a), ex(&mut rng, b));
                let name = if op == 13 { "XRANGE" } else { "XREVRANGE" };
                let mut c = vec![name.into(), key.into(), a, b];
                if rng.below(2) == 0 {
                    c.extend(["COUNT".into(), rng.below(150).to_string()]);
                }
                c
            }
            15 => vec!["XRANGE".into(), key.into(), "-".into(), "+".into()],
            16 => vec![
                "XREAD".into(),
                "COUNT".into(),
                rng.below(120).to_string(),
                "STREAMS".into(),
                "s".into(),
                "s2".into(),
                id(&mut rng, ms),
                id(&mut rng, ms),
            ],
            17 => vec!["XLEN".into(), key.into()],
            18 => vec![
                "XREVRANGE".into(),
                key.into(),
                "+".into(),
                "-".into(),
                "COUNT".into(),
                "5".into(),
            ],
            _ => vec!["XREAD".into(), "STREAMS".into(), key.into(), "0-0".into()],
        };
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        pair.same_str(&args);
        if rng.below(4) == 0 {
            pair.same_str_on(conn3, &args);
        }
    }
}
