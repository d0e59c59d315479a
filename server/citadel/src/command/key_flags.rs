//! COMMAND GETKEYSANDFLAGS: a command's keys with their key-spec flags
//! (RW/RO/OW/RM, access/update/insert/delete ...), found as Redis 7.0's
//! getKeysUsingKeySpecs finds them: each key spec's begin search (an
//! index, or after a keyword) then its find-keys rule (a range, or a
//! count argument).

use super::args::Args;
use super::info_spec::{Begin, Find, KeySpec};

/// A key spec's argument positions in `cmd` (the command's own
/// arguments, its name at 0); None: the arguments do not fit it.
fn positions(spec: &KeySpec, cmd: Args<'_>) -> Option<Vec<usize>> {
    let argc = cmd.len() as i64;
    let first = match spec.begin {
        Begin::Index(i) => i,
        Begin::Keyword(word, from) => {
            let start = if from > 0 { from } else { argc + from };
            let forward = from > 0;
            let mut i = start;
            let mut found = None;
            while (1..argc).contains(&i) {
                if cmd.get(i as usize).eq_ignore_ascii_case(word.as_bytes()) {
                    found = Some(i + 1);
                    break;
                }
                i += if forward { 1 } else { -1 };
            }
            // No keyword: this spec names no keys here.
            let Some(first) = found else {
                return Some(Vec::new());
            };
            first
        }
        Begin::Unknown => return None,
    };
    let (first, last, step) = match spec.find {
        Find::Range {
            lastkey,
            keystep,
            limit,
        } => {
            let last = if lastkey >= 0 {
                first + lastkey
            } else if limit == 0 {
                argc + lastkey
            } else {
                first + ((argc - first) / limit + lastkey)
            };
            (first, last, keystep)
        }
        Find::Keynum {
            keynumidx,
            firstkey,
            keystep,
        } => {
            let at = usize::try_from(first + keynumidx).ok()?;
            if at >= cmd.len() {
                return None;
            }
            let numkeys = std::str::from_utf8(cmd.get(at))
                .ok()?
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)?;
            let first = first + firstkey;
            (first, first + numkeys - 1, keystep)
        }
        Find::Unknown => return None,
    };
    // As Redis: no keys where a count says zero is no fit either (EVAL
    // with numkeys 0 answers an empty list for its no_mandatory_keys).
    if last >= argc || last < first || first >= argc || step < 1 {
        return None;
    }
    Some(
        (first..=last)
            .step_by(step as usize)
            .map(|i| i as usize)
            .collect(),
    )
}

/// The flags of a `variable_flags` key spec for these arguments, as
/// Redis's getkeys procedures give them (SET with or without GET,
/// BITFIELD with or without a write).
fn variable_flags(name: &str, cmd: Args<'_>) -> Option<&'static [&'static str]> {
    let has =
        |from: usize, words: &[&str]| (from..cmd.len()).any(|i| words.iter().any(|w| cmd.is(i, w)));
    match name {
        "set" if has(3, &["get"]) => Some(&["RW", "access", "update"]),
        "set" => Some(&["OW", "update"]),
        "bitfield" if has(2, &["set", "incrby"]) => Some(&["RW", "access", "update"]),
        "bitfield" => Some(&["RO", "access"]),
        _ => None,
    }
}

/// Every key of `cmd` (a call of command `name`) by `specs`, with its
/// spec's flags, in spec order; None when a spec does not fit the
/// arguments (or cannot be followed).
pub fn keys_and_flags<'a>(
    name: &str,
    specs: &[KeySpec],
    cmd: Args<'a>,
) -> Option<Vec<(&'a [u8], &'static [&'static str])>> {
    let mut keys = Vec::new();
    for spec in specs {
        let flags = if spec.flags.contains(&"variable_flags") {
            variable_flags(name, cmd).unwrap_or(spec.flags)
        } else {
            spec.flags
        };
        for pos in positions(spec, cmd)? {
            keys.push((cmd.get(pos), flags));
        }
    }
    Some(keys)
}
