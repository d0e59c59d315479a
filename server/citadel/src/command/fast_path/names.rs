//! The commands a run of the fast path takes (`Kind`), and the table
//! lookups of one run (`Names`), the last name's remembered.

use std::ops::Range;
use std::sync::OnceLock;

use super::super::table::{self, CommandDef};

/// How the run calls a command's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// GET key: with the skimmed key's hash, inlined.
    Get,
    /// SET key value (no options): with the skimmed key's hash, inlined.
    Set,
    /// A collection command: through the table's handler.
    Other,
}

/// A command the run takes: how, its global index and definition.
#[derive(Clone, Copy)]
pub(super) struct Plain {
    pub kind: Kind,
    pub idx: usize,
    pub def: &'static CommandDef,
    /// Has the "write" flag (a per-key write limit sends it to the normal
    /// path, which applies the limit).
    pub write: bool,
}

/// Whether the run may take every command of `def` (arity aside): GET,
/// SET, and the collection commands that neither block nor have
/// subcommands. None of them changes the connection's state or needs a
/// hook the run skips.
fn kind_of(def: &CommandDef) -> Option<Kind> {
    match def.name {
        "get" => return Some(Kind::Get),
        "set" => return Some(Kind::Set),
        _ => {}
    }
    let collection = matches!(def.group, "list" | "hash" | "set" | "sorted-set");
    (collection && def.subcommands.is_empty() && !def.has_flag("blocking")).then_some(Kind::Other)
}

/// A command name's table entry and what the run makes of it.
#[derive(Clone, Copy)]
struct Known {
    idx: usize,
    def: &'static CommandDef,
    /// None: the run never takes it.
    kind: Option<Kind>,
    write: bool,
}

impl Known {
    fn of(name: &[u8]) -> Option<Known> {
        let (idx, def) = table::lookup(name)?;
        Some(Known {
            idx,
            def,
            kind: kind_of(def),
            write: def.has_flag("write"),
        })
    }
}

/// The table lookups of one run, the last short name's remembered: a
/// pipeline mostly repeats one command, whose name then costs one word
/// compare instead of a lookup.
#[derive(Default)]
pub(super) struct Names {
    /// The remembered name's bytes as they came (`name_word`; another
    /// case of it is looked up) and its length.
    word: u64,
    len: usize,
    last: Option<Known>,
}

/// The name at `name` in `input` (1 to 8 bytes) as a little-endian
/// word, loaded at once: None when it is longer or empty, or when 8 bytes from its
/// start run past the input (a command's name is followed by at least its
/// CRLF and, for the commands the run takes, its arguments).
#[inline(always)]
fn name_word(input: &[u8], name: &Range<usize>) -> Option<u64> {
    let len = name.len();
    if !(1..=8).contains(&len) {
        return None;
    }
    let bytes: [u8; 8] = input.get(name.start..name.start + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes) & (u64::MAX >> (64 - 8 * len)))
}

/// GET key or SET key value, the name in any case, matched as three
/// letters: the two commands every cache serves most skip even the
/// remembered name's compare.
#[inline(always)]
fn get_or_set(name: &[u8], argc: usize) -> Option<Plain> {
    let [a, b, c] = name else {
        return None;
    };
    // `| 0x20` lowers a letter and maps no other byte to one.
    if (b | 0x20, c | 0x20) != (b'e', b't') {
        return None;
    }
    let [get, set] = get_and_set();
    match (a | 0x20, argc) {
        (b'g', 2) => Some(*get),
        (b's', 3) => Some(*set),
        _ => None,
    }
}

/// GET's and SET's entries, found once.
fn get_and_set() -> &'static [Plain; 2] {
    static PLAIN: OnceLock<[Plain; 2]> = OnceLock::new();
    PLAIN.get_or_init(|| {
        let find = |name: &[u8], kind| {
            let (idx, def) = table::lookup(name).expect("GET and SET are in the table");
            Plain {
                kind,
                idx,
                def,
                write: def.has_flag("write"),
            }
        };
        [find(b"get", Kind::Get), find(b"set", Kind::Set)]
    })
}

impl Names {
    /// The command named at `name` of `input` (any case) if the run takes
    /// it with `argc` arguments; None for anything else (the normal path
    /// runs it, and answers an unknown name or a wrong arity).
    /// Inlined: out of line, the call and its returned `Option<Plain>`
    /// cost ~25 instructions a GET.
    #[inline(always)]
    pub(super) fn plain(
        &mut self,
        input: &[u8],
        name: &Range<usize>,
        argc: usize,
    ) -> Option<Plain> {
        let name_bytes = input.get(name.clone())?;
        if let Some(plain) = get_or_set(name_bytes, argc) {
            return Some(plain);
        }
        let word = name_word(input, name);
        let same = word == Some(self.word) && name.len() == self.len;
        let known = match self.last {
            Some(known) if same => known,
            _ => self.look_up(name_bytes, word)?,
        };
        let kind = match known.kind? {
            // SET with options: its handler parses them.
            Kind::Set if argc != 3 => Kind::Other,
            kind => kind,
        };
        if !known.def.arity_ok(argc) {
            return None;
        }
        Some(Plain {
            kind,
            idx: known.idx,
            def: known.def,
            write: known.write,
        })
    }

    /// A name not remembered: looked up, and remembered if it is known
    /// and short.
    #[cold]
    #[inline(never)]
    fn look_up(&mut self, name: &[u8], word: Option<u64>) -> Option<Known> {
        let known = Known::of(name)?;
        if let Some(word) = word {
            (self.word, self.len, self.last) = (word, name.len(), Some(known));
        }
        Some(known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `names.plain` of `name` followed by what follows a name in a
    /// request (its CRLF and a key), with `argc` arguments.
    fn plain_of(names: &mut Names, name: &str, argc: usize) -> Option<Plain> {
        let input = format!("{name}\r\n$1\r\nk\r\n");
        names.plain(input.as_bytes(), &(0..name.len()), argc)
    }

    /// What the run makes of a command, its arguments laid end to end.
    fn kind(args: &[&str]) -> Option<Kind> {
        plain_of(&mut Names::default(), args.first()?, args.len()).map(|p| p.kind)
    }

    /// The command `names` finds, by name.
    fn found(names: &mut Names, name: &str, argc: usize) -> Option<&'static str> {
        plain_of(names, name, argc).map(|p| p.def.name)
    }

    #[test]
    fn get_and_set_are_found_by_their_letters_as_the_table_has_them() {
        let [get, set] = get_and_set();
        assert_eq!(
            (get.def.name, get.kind, get.write),
            ("get", Kind::Get, false)
        );
        assert_eq!(
            (set.def.name, set.kind, set.write),
            ("set", Kind::Set, true)
        );
        assert!(get_or_set(b"gEt", 2).is_some() && get_or_set(b"SeT", 3).is_some());
        for (name, argc) in [
            (&b"GET"[..], 3),
            (b"SET", 4),
            (b"G\x07T", 2),
            (b"'ET", 2),
            (b"GETS", 2),
        ] {
            assert!(get_or_set(name, argc).is_none(), "{name:?} {argc}");
        }
    }

    #[test]
    fn plain_gets_and_sets_in_any_case_are_inlined() {
        assert_eq!(kind(&["GET", "k"]), Some(Kind::Get));
        assert_eq!(kind(&["gEt", "k"]), Some(Kind::Get));
        assert_eq!(kind(&["SET", "k", "v"]), Some(Kind::Set));
        assert_eq!(kind(&["set", "k", "v"]), Some(Kind::Set));
        // Options: the handler parses them.
        assert_eq!(kind(&["SET", "k", "v", "NX"]), Some(Kind::Other));
    }

    #[test]
    fn collection_commands_are_taken_and_others_are_not() {
        assert_eq!(kind(&["LPUSH", "l", "a", "b"]), Some(Kind::Other));
        assert_eq!(kind(&["hset", "h", "f", "v"]), Some(Kind::Other));
        assert_eq!(kind(&["ZADD", "z", "1", "m"]), Some(Kind::Other));
        assert_eq!(kind(&["SPOP", "s"]), Some(Kind::Other));
        assert_eq!(kind(&["ZRANGEBYSCORE", "z", "0", "1"]), Some(Kind::Other));
        // Wrong arity, blocking, other groups, unknown or look-alike
        // names: the normal path.
        assert_eq!(kind(&["GET"]), None);
        assert_eq!(kind(&["GET", "k", "x"]), None);
        assert_eq!(kind(&["SET", "k"]), None);
        assert_eq!(kind(&["LPUSH", "l"]), None);
        assert_eq!(kind(&["BLPOP", "l", "0"]), None);
        assert_eq!(kind(&["DEL", "k"]), None);
        assert_eq!(kind(&["MULTI"]), None);
        assert_eq!(kind(&["GETS", "k"]), None);
        assert_eq!(kind(&["G\u{7}T", "k"]), None);
        assert_eq!(kind(&["", "k"]), None);
    }

    #[test]
    fn a_remembered_name_is_only_reused_for_the_same_name() {
        let mut names = Names::default();
        assert_eq!(found(&mut names, "LPUSH", 3), Some("lpush"));
        assert_eq!(found(&mut names, "LPUSH", 4), Some("lpush"));
        assert_eq!(found(&mut names, "lpush", 3), Some("lpush"));
        assert_eq!(found(&mut names, "LPUSHX", 3), Some("lpushx"));
        assert_eq!(found(&mut names, "LPUSH", 3), Some("lpush"));
        assert_eq!(found(&mut names, "LPUS", 3), None);
        assert_eq!(found(&mut names, "RPUSH", 3), Some("rpush"));
        // A wrong arity of the remembered name: the normal path.
        assert!(found(&mut names, "RPUSH", 2).is_none());
        // An unknown name leaves the last known one remembered.
        assert!(found(&mut names, "NOSUCH", 3).is_none());
        assert_eq!(found(&mut names, "RPUSH", 3), Some("rpush"));
        // Eight bytes and longer names, and a name at the input's end.
        assert_eq!(found(&mut names, "ZREVRANK", 3), Some("zrevrank"));
        assert_eq!(found(&mut names, "ZREVRANK", 3), Some("zrevrank"));
        assert_eq!(
            found(&mut names, "ZREMRANGEBYRANK", 4),
            Some("zremrangebyrank")
        );
        let at_end = names.plain(b"xSPOP", &(1..5), 2).map(|p| p.def.name);
        assert_eq!(at_end, Some("spop"));
    }

    #[test]
    fn name_words_hold_the_name_bytes_only() {
        let input = b"lpush\r\n$1\r\nk";
        assert_eq!(
            name_word(input, &(0..5)),
            Some(u64::from_le_bytes(*b"lpush\0\0\0"))
        );
        assert_eq!(name_word(input, &(0..0)), None);
        assert_eq!(name_word(input, &(0..1)), Some(u64::from(b'l')));
        assert_eq!(
            name_word(b"lpushxyz", &(0..8)),
            Some(u64::from_le_bytes(*b"lpushxyz"))
        );
        assert_eq!(name_word(b"lpush\r\n", &(0..5)), None);
        assert_eq!(name_word(b"zremrangebyrank\r\n", &(0..15)), None);
    }
}
