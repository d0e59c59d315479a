use super::*;

/// `LATENCY HISTORY command`, `LATENCY GRAPH command` and `TIME` from
/// Redis 7.0.15 in the same second, after six `DEBUG SLEEP`s a second or
/// more apart with `latency-monitor-threshold 1`.
#[test]
fn draws_what_redis_draws() {
    let history = [
        (1796342292, 5),
        (1796342293, 40),
        (1796342294, 12),
        (1796342296, 80),
        (1796342297, 3),
        (1796342298, 25),
    ];
    let want = "command - high 80 ms, low 3 ms (all time high 80 ms)\n\
        --------------------------------------------------------------------------------\n   \
        #  \n   |  \n # | _\n_|o|_|\n      \n765321\nssssss\n";
    assert_eq!(render("command", &history, 80, 1796342299), want);
}

#[test]
fn long_histories_wrap_at_80_columns_and_labels_grow_units() {
    let now = 1_000_000;
    let history: Vec<(u64, u64)> = (0..100)
        .map(|i| (now - 200_000 + i * 2_000, i % 7))
        .collect();
    let text = render("fast-command", &history, 9, now);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "fast-command - high 6 ms, low 0 ms (all time high 9 ms)"
    );
    // Block one: 4 rows, a blank row, labels "2d" ... "1d", "23h"... (3
    // characters at most); then a blank line and block two, 20 wide.
    assert_eq!(lines[2].len(), 80);
    assert_eq!(lines[6].trim(), "");
    assert!(lines[7].starts_with("2222"), "{}", lines[7]);
    let second = lines.iter().position(|l| l.is_empty()).unwrap();
    assert!(lines[second + 1..].iter().all(|l| l.len() == 20), "{text}");
    // Equal values draw the bottom row only.
    let flat = render("e", &[(10, 4), (11, 4)], 4, 12);
    assert_eq!(flat.lines().nth(5), Some("__"));
    assert_eq!(flat.lines().nth(2), Some("  "));
}

/// As above, with 86 samples (two blocks of columns): Redis 7.0.15's
/// graph, captured with its history and TIME in the same second.
#[test]
fn wraps_as_redis_wraps() {
    let start = 1796342304;
    let offsets: [u64; 86] = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21, 22, 23, 24, 25,
        26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 47, 48, 49,
        50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72,
        73, 74, 75, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 89,
    ];
    let ms: [u64; 86] = [
        2, 39, 16, 53, 30, 7, 44, 21, 58, 35, 12, 49, 26, 3, 40, 17, 54, 31, 8, 45, 22, 59, 36, 13,
        50, 27, 4, 41, 18, 55, 32, 9, 46, 23, 60, 37, 14, 55, 28, 5, 42, 19, 56, 33, 10, 47, 24,
        61, 38, 15, 52, 29, 7, 43, 20, 57, 34, 11, 48, 25, 4, 39, 17, 53, 30, 7, 45, 21, 58, 35,
        18, 50, 26, 3, 40, 17, 55, 31, 9, 45, 22, 59, 36, 13, 50, 27,
    ];
    let history: Vec<(u64, u64)> = offsets
        .iter()
        .zip(ms)
        .map(|(o, ms)| (start + o, ms))
        .collect();
    let want = "command - high 61 ms, low 2 ms (all time high 61 ms)\n--------------------------------------------------------------------------------\n   o    #  _    o    #  _    o    #  o    o  _ #  o    #  _    o    #  _    o   \n o |  # |_ |  o |  # |_ |  o |_ # |o |  # |_ | |o |  # |_ |  o |  # |_ |  o |  #\n | |# |_|| |o |_|# |o|| |# |_|| |o|| |# |_|| |o|| |# |_|| |o |_|# |_||_|o |_|# |\n_|#||o||||#||_||||o||||#||_||||o||||#||_||||o||||#||o||||o||_||||o|||||||_||||o|\n                                                                                \n11111111111111111111111111111155555555554444444443333333333222222222211111111198\nmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm987654321098765321098765432109876543210987653210ss\n                              ssssssssssssssssssssssssssssssssssssssssssssssss  \n\n #  _ \n |_ | \no|| |#\n|||#||\n      \n765431\nssssss\n";
    assert_eq!(render("command", &history, 61, 1796342394), want);
}
