//! LCS against a real redis-server: random pairs of strings (small
//! alphabets, so there are many common subsequences of the longest length
//! and the walk back through the table decides which one is answered),
//! with every option, in RESP2 and RESP3, byte for byte; then the errors.

use citadel_tests::differential::{Pair, Rng};

fn random_string(rng: &mut Rng, alphabet: &[&str]) -> String {
    (0..rng.below(40)).map(|_| rng.pick(alphabet)).collect()
}

#[test]
fn random_lcs_queries_match_redis() {
    let mut pair = Pair::start();
    let conn3 = pair.connect();
    pair.both(conn3, &["HELLO", "3"]);
    let mut rng = Rng(0x05ee_d1c5);
    for round in 0..400 {
        let alphabet: &[&str] = if round % 3 == 0 {
            &["a", "b"]
        } else {
            &["a", "b", "c", "d", "e", "f", "g", "h"]
        };
        let (a, b) = (
            random_string(&mut rng, alphabet),
            random_string(&mut rng, alphabet),
        );
        pair.same_str(&["SET", "a", &a]);
        pair.same_str(&["SET", "b", &b]);
        let min = rng.int(4).to_string();
        let queries: [&[&str]; 5] = [
            &["LCS", "a", "b"],
            &["LCS", "a", "b", "LEN"],
            &["LCS", "a", "b", "IDX"],
            &["LCS", "a", "b", "IDX", "MINMATCHLEN", &min, "WITHMATCHLEN"],
            &["LCS", "b", "a", "withmatchlen", "idx"],
        ];
        for q in queries {
            pair.same_str(q);
            pair.same_str_on(conn3, q);
        }
    }
}

#[test]
fn lcs_errors_and_missing_keys_match_redis() {
    let mut pair = Pair::start();
    let conn3 = pair.connect();
    pair.both(conn3, &["HELLO", "3"]);
    pair.same_str(&["SET", "s", "ohmytext"]);
    pair.same_str(&["SET", "t", "mynewtext"]);
    pair.same_str(&["RPUSH", "list", "x"]);
    let cases: &[&[&str]] = &[
        &["LCS", "s", "t", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"],
        &["LCS", "s", "missing"],
        &["LCS", "missing", "other", "IDX"],
        &["LCS", "missing", "other", "LEN"],
        // The type check comes before the options are read.
        &["LCS", "list", "s"],
        &["LCS", "s", "list", "FOO"],
        &["LCS", "s", "t", "LEN", "IDX"],
        &["LCS", "s", "t", "MINMATCHLEN"],
        &["LCS", "s", "t", "MINMATCHLEN", "x"],
        &["LCS", "s", "t", "MINMATCHLEN", "-3", "IDX"],
        &["LCS", "s", "t", "FOO"],
        &["LCS", "s"],
    ];
    for case in cases {
        pair.same_str(case);
        pair.same_str_on(conn3, case);
    }
    pair.same_str(&["COMMAND", "INFO", "LCS"]);
    pair.same_str(&["COMMAND", "GETKEYS", "LCS", "k1", "k2", "IDX"]);
}
