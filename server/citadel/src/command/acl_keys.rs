//! The keys a command names and what it does with each (read, write), as
//! Redis's ACL sees them: its key specs (COMMAND INFO's, from Redis), SET
//! and BITFIELD by their arguments (their flags vary), and a
//! Citadel-only command by its table row.

use super::args::Args;
use super::docs::redis_info;
use super::info_spec::{Begin, Find, KeySpec};
use super::table::CommandDef;

/// What a command does with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub write: bool,
}

const READ: Access = Access {
    read: true,
    write: false,
};
const WRITE: Access = Access {
    read: false,
    write: true,
};
const BOTH: Access = Access {
    read: true,
    write: true,
};

/// Calls `f` with each key and its access until it returns false;
/// returns the key it stopped at.
pub fn find_key<'a>(
    def: &CommandDef,
    args: Args<'a>,
    mut f: impl FnMut(&'a [u8], Access) -> bool,
) -> Option<&'a [u8]> {
    let mut stop = None;
    let mut visit = |k: &'a [u8], a: Access| {
        if stop.is_none() && !f(k, a) {
            stop = Some(k);
        }
    };
    match def.name {
        "set" if args.len() >= 2 => {
            let get = args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
            visit(args.get(1), if get { BOTH } else { WRITE });
        }
        "bitfield" if args.len() >= 2 => {
            visit(
                args.get(1),
                if bitfield_reads_only(args) {
                    READ
                } else {
                    BOTH
                },
            );
        }
        _ => match redis_info(def.name) {
            Some(info) if !info.key_specs.is_empty() && def.find_keys.is_none() => {
                for spec in info.key_specs {
                    by_spec(spec, args, &mut visit);
                }
            }
            _ => {
                let access = match (def.has_flag("write"), def.has_flag("readonly")) {
                    (true, _) => BOTH,
                    (false, true) => READ,
                    (false, false) => BOTH,
                };
                def.for_each_key(args, |k| visit(k, access));
            }
        },
    }
    stop
}

/// Redis's bitfieldGetKeys: read-only unless a SET or INCRBY (or
/// something it cannot parse) comes.
fn bitfield_reads_only(args: Args<'_>) -> bool {
    let mut i = 2;
    while i < args.len() {
        let left = args.len() - i - 1;
        if args.is(i, "get") && left >= 2 {
            i += 3;
        } else if args.is(i, "overflow") && left >= 1 {
            i += 2;
        } else {
            return false;
        }
    }
    true
}

fn access_of(spec: &KeySpec) -> Option<Access> {
    let has = |f: &str| spec.flags.contains(&f);
    if has("not_key") {
        return None;
    }
    let write = has("insert") || has("delete") || has("update");
    Some(Access {
        read: has("access"),
        write,
    })
}

/// One key spec's keys (Redis's getKeysUsingKeySpecs); a spec that does
/// not fit the arguments gives none (the command fails its own parsing).
fn by_spec<'a>(spec: &KeySpec, args: Args<'a>, visit: &mut impl FnMut(&'a [u8], Access)) {
    let Some(access) = access_of(spec) else {
        return;
    };
    let argc = args.len() as i64;
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
                if args.get(i as usize).eq_ignore_ascii_case(word.as_bytes()) {
                    found = Some(i + 1);
                    break;
                }
                i += if start <= end { 1 } else { -1 };
            }
            let Some(f) = found else { return };
            f
        }
        Begin::Unknown => return,
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
            if keynumidx >= argc - first {
                return;
            }
            let Ok(n) = std::str::from_utf8(args.get((first + keynumidx) as usize))
                .unwrap_or("")
                .parse::<i64>()
            else {
                return;
            };
            if n < 0 {
                return;
            }
            let first = first + firstkey;
            (first, first + n - 1, keystep)
        }
        Find::Unknown => return,
    };
    if last >= argc || last < first || first >= argc {
        return;
    }
    let mut i = first;
    while i <= last {
        visit(args.get(i as usize), access);
        i += step.max(1);
    }
}
