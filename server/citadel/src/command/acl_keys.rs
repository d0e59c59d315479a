//! The keys a command names and what it does with each (read, write), as
//! Redis's ACL sees them: its key specs (COMMAND INFO's, from Redis), SET
//! and BITFIELD by their arguments (their flags vary), and a
//! Citadel-only command by its table row.

use super::args::Args;
use super::docs::redis_info;
use super::key_flags;
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
    match redis_info(def.name) {
        Some(info) if !info.key_specs.is_empty() && def.find_keys.is_none() => {
            for spec in info.key_specs {
                let Some(access) = access_of(key_flags::flags_for(def.name, spec, args)) else {
                    continue;
                };
                // A spec the arguments do not fit names no keys here (the
                // command fails its own parsing).
                for pos in key_flags::positions(spec, args).into_iter().flatten() {
                    let key = args.get(pos);
                    if !f(key, access) {
                        return Some(key);
                    }
                }
            }
            None
        }
        _ => {
            let access = match (def.has_flag("write"), def.has_flag("readonly")) {
                (false, true) => READ,
                _ => BOTH,
            };
            let mut stop = None;
            def.for_each_key(args, |k| {
                if stop.is_none() && !f(k, access) {
                    stop = Some(k);
                }
            });
            stop
        }
    }
}

/// What a key spec's flags say a command does with its keys; None for a
/// `not_key` argument.
fn access_of(flags: &[&str]) -> Option<Access> {
    let has = |f: &str| flags.contains(&f);
    if has("not_key") {
        return None;
    }
    Some(Access {
        read: has("access"),
        write: has("insert") || has("delete") || has("update"),
    })
}
