//! A command's keys found by its key specs, as Redis 7.0's
//! getKeysUsingKeySpecs finds them: each key spec's begin search (an
//! index, or after a keyword) then its find-keys rule (a range, or a
//! count argument). COMMAND GETKEYSANDFLAGS answers with them and their
//! flags (RW/RO/OW/RM, access/update/insert/delete ...); the ACL checks
//! each key for what its flags say the command does with it.

use super::args::Args;
use super::info_spec::{Begin, Find, KeySpec};
use super::table::CommandDef;

/// The arguments do not fit a key spec (Redis's `invalid_spec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoFit;

/// A key spec's argument positions in `cmd` (the command's own
/// arguments, its name at 0), in order; empty where the spec's keyword
/// is absent.
pub fn positions(
    spec: &KeySpec,
    cmd: Args<'_>,
) -> Result<std::iter::StepBy<std::ops::RangeInclusive<usize>>, NoFit> {
    // No keys: an empty range of the same type.
    let none = Ok(std::ops::RangeInclusive::new(1, 0).step_by(1));
    let argc = cmd.len() as i64;
    let first = match spec.begin {
        Begin::Index(i) => i,
        Begin::Keyword(word, from) => {
            // Redis's search: up to (not including) the last argument
            // forwards, or down to (not including) argument 1 backwards.
            let (start, end) = if from > 0 {
                (from, argc - 1)
            } else {
                (argc + from, 1)
            };
            let mut i = start;
            let mut found = None;
            while i != end && (1..argc).contains(&i) {
                if cmd.get(i as usize).eq_ignore_ascii_case(word.as_bytes()) {
                    found = Some(i + 1);
                    break;
                }
                i += if start <= end { 1 } else { -1 };
            }
            // No keyword: this spec names no keys here.
            let Some(first) = found else {
                return none;
            };
            first
        }
        Begin::Unknown => return Err(NoFit),
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
            let at = usize::try_from(first + keynumidx).map_err(|_| NoFit)?;
            if at >= cmd.len() {
                return Err(NoFit);
            }
            let numkeys = std::str::from_utf8(cmd.get(at))
                .ok()
                .and_then(|n| n.parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or(NoFit)?;
            let first = first + firstkey;
            (first, first + numkeys - 1, keystep)
        }
        Find::Unknown => return Err(NoFit),
    };
    // As Redis: no keys where a count says zero is no fit either (EVAL
    // with numkeys 0 answers an empty list for its no_mandatory_keys).
    if last >= argc || last < first || first >= argc || step < 1 {
        return Err(NoFit);
    }
    Ok((first as usize..=last as usize).step_by(step as usize))
}

/// A key spec's flags for these arguments: a `variable_flags` spec's as
/// Redis's getkeys procedures give them (SET with or without GET,
/// BITFIELD with or without a write), any other's as they are.
pub fn flags_for(name: &str, spec: &KeySpec, cmd: Args<'_>) -> &'static [&'static str] {
    if !spec.flags.contains(&"variable_flags") {
        return spec.flags;
    }
    match name {
        "set" if (3..cmd.len()).any(|i| cmd.is(i, "get")) => &["RW", "access", "update"],
        "set" => &["OW", "update"],
        "bitfield" if bitfield_reads_only(cmd) => &["RO", "access"],
        "bitfield" => &["RW", "access", "update"],
        _ => spec.flags,
    }
}

/// Redis's bitfieldGetKeys: read-only unless a SET or INCRBY (or
/// something it cannot parse) comes.
fn bitfield_reads_only(cmd: Args<'_>) -> bool {
    let mut i = 2;
    while i < cmd.len() {
        let left = cmd.len() - i - 1;
        if cmd.is(i, "get") && left >= 2 {
            i += 3;
        } else if cmd.is(i, "overflow") && left >= 1 {
            i += 2;
        } else {
            return false;
        }
    }
    true
}

/// Every key of `cmd` (a call of command `def`) by `specs`, with its
/// spec's flags, in spec order; None when a spec does not fit the
/// arguments (or cannot be followed). Specs Redis marks `incomplete`
/// (MIGRATE's KEYS) cannot be followed: as Redis then calls the
/// command's own getkeys, every key the command's finder names gets the
/// first spec's flags (the key argument's: migrateGetKeys's).
pub fn keys_and_flags<'a>(
    def: &CommandDef,
    specs: &[KeySpec],
    cmd: Args<'a>,
) -> Option<Vec<(&'a [u8], &'static [&'static str])>> {
    let mut keys = Vec::new();
    let incomplete = specs.iter().any(|s| s.flags.contains(&"incomplete"));
    if let (true, Some(first), Some(_)) = (incomplete, specs.first(), def.find_keys) {
        def.for_each_key(cmd, |k| keys.push((k, first.flags)));
        return Some(keys);
    }
    let name = def.name;
    // SORT's BY/GET and STORE specs are 'unknown': Redis asks sortGetKeys
    // (sortROGetKeys): the source is read, a STORE destination overwritten.
    if matches!(name, "sort" | "sort_ro") {
        def.for_each_key(cmd, |k| {
            let flags: &'static [&'static str] = if keys.is_empty() {
                &["RO", "access"]
            } else {
                &["OW", "update"]
            };
            keys.push((k, flags));
        });
        return Some(keys);
    }
    for spec in specs {
        let flags = flags_for(name, spec, cmd);
        for pos in positions(spec, cmd).ok()? {
            keys.push((cmd.get(pos), flags));
        }
    }
    Some(keys)
}
