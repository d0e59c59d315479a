//! `notify-keyspace-events`: Redis's class letters, parsed into bits once
//! (at startup and on CONFIG SET) so the server tests a word per change.

/// Publish on `__keyspace@0__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// Publish on `__keyevent@0__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// Generic commands: del, expire, rename, persist, copy ...
pub const GENERIC: u32 = 1 << 2;
pub const STRING: u32 = 1 << 3;
pub const LIST: u32 = 1 << 4;
pub const SET: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const ZSET: u32 = 1 << 7;
pub const EXPIRED: u32 = 1 << 8;
pub const EVICTED: u32 = 1 << 9;
pub const STREAM: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const MODULE: u32 = 1 << 12;
pub const NEW_KEY: u32 = 1 << 13;
/// 'A': every class but key-miss and new-key.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

const LETTERS: &[(char, u32)] = &[
    ('g', GENERIC),
    ('$', STRING),
    ('l', LIST),
    ('s', SET),
    ('h', HASH),
    ('z', ZSET),
    ('x', EXPIRED),
    ('e', EVICTED),
    ('t', STREAM),
    ('d', MODULE),
    ('n', NEW_KEY),
    ('K', KEYSPACE),
    ('E', KEYEVENT),
    ('m', KEY_MISS),
];

/// The class letters (`LETTERS`' first ones): "A" stands for them all
/// but `n`, which Redis then leaves out of the text as well.
const CLASSES: usize = 11;

/// Parses Redis's letters ("KEA", "Ex", ""); an unknown one is refused.
pub fn parse(text: &str) -> Result<u32, String> {
    text.chars().try_fold(0, |flags, c| match c {
        'A' => Ok(flags | ALL),
        c => LETTERS
            .iter()
            .find(|(l, _)| *l == c)
            .map(|(_, bit)| flags | bit)
            .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string()),
    })
}

/// The canonical text CONFIG GET answers (as Redis: "A" when every class
/// is on, else the class letters with `n` last, then K, E and m).
pub fn render(flags: u32) -> String {
    let mut out = String::new();
    let classes = &LETTERS[..CLASSES];
    if flags & ALL == ALL {
        out.push('A');
    } else {
        out.extend(
            classes
                .iter()
                .filter(|(_, b)| flags & b != 0)
                .map(|(l, _)| *l),
        );
    }
    out.extend(
        LETTERS[CLASSES..]
            .iter()
            .filter(|(_, b)| flags & b != 0)
            .map(|(l, _)| *l),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_round_trip_as_redis_renders_them() {
        assert_eq!(render(parse("KEA").unwrap()), "AKE");
        assert_eq!(render(parse("Ex$g").unwrap()), "g$xE");
        assert_eq!(render(parse("nE").unwrap()), "nE");
        assert_eq!(render(parse("AKEn").unwrap()), "AKE");
        assert_eq!(parse("").unwrap(), 0);
        assert!(parse("KEQ").is_err());
    }
}
