//! HOTKEYS [COUNT n], INFO's `# Hotkeys` section, and the command path's
//! two hooks into `crate::hotkeys`: the sampled command's keys and the
//! per-key write limit.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use citadel_cache::KeyHash;

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::table::CommandDef;
use crate::state::ServerState;

/// HOTKEYS lists this many keys unless COUNT says otherwise.
const DEFAULT_COUNT: usize = 10;
/// The most HOTKEYS lists.
const MAX_COUNT: usize = 1000;
/// INFO lists this many.
const INFO_COUNT: usize = 10;

/// The sampled command (its core's countdown reached zero): counts its keys.
pub fn sample(ctx: &mut Ctx<'_>, def: &CommandDef, args: Args<'_>) {
    let thread = &mut *ctx.thread;
    // The command clock's reading at this command's start (EXEC's, for
    // its queued commands): within a slice of a second is all it needs.
    let now = thread.command_clock.started();
    ctx.state
        .hotkeys
        .record(thread.index, &mut thread.hotkeys, now, |f| {
            def.for_each_key(args, f)
        });
}

/// `sample` for the batched GET/SET path (`fast_path.rs`): its one key,
/// which the cache hashed already (the hot keys' hash is the cache's).
pub fn sample_one(ctx: &mut Ctx<'_>, key: &[u8], hash: KeyHash) {
    let thread = &mut *ctx.thread;
    let now = thread.command_clock.started();
    ctx.state
        .hotkeys
        .record_one(thread.index, &mut thread.hotkeys, now, hash.into(), key);
}

/// The per-key write limit: the error that sheds this write, if one of
/// its keys took its writes for this second already. While the limit is
/// off this is one relaxed load.
pub fn refuse_write(ctx: &Ctx<'_>, def: &CommandDef, args: Args<'_>) -> Option<CmdError> {
    ctx.state.hotkeys.writes.limit()?;
    if !def.has_flag("write") {
        return None;
    }
    write_refused(ctx.state, |f| def.for_each_key(args, f)).map(CmdError::KeyWriteRate)
}

/// The limit's check over the keys `for_each_key` names (shared by RESP
/// commands and RPC operations): the rate a key is over, the refusal
/// counted as shed by the key layer.
pub fn write_refused(
    state: &ServerState,
    for_each_key: impl FnOnce(&mut dyn FnMut(&[u8])),
) -> Option<u64> {
    let hotkeys = &state.hotkeys;
    let mut refused = None;
    for_each_key(&mut |key| {
        if refused.is_none() {
            refused = hotkeys.refuse_write(key);
        }
    });
    let rate = refused?;
    state.overload.stats.count(
        crate::overload::Reason::KeyWriteRate,
        crate::overload::Rank::UNRANKED,
    );
    Some(rate)
}

/// HOTKEYS [COUNT n]: an array of [key, hits over the window, hits per
/// second], most first.
pub fn hotkeys(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let count = match args.len() {
        1 => DEFAULT_COUNT,
        3 if args.get(1).eq_ignore_ascii_case(b"count") => {
            let n = std::str::from_utf8(args.get(2))
                .ok()
                .and_then(|t| t.parse::<usize>().ok())
                .ok_or(CmdError::NotInteger)?;
            if n == 0 || n > MAX_COUNT {
                return Err(CmdError::Static("ERR COUNT must be between 1 and 1000"));
            }
            n
        }
        _ => return Err(CmdError::Syntax),
    };
    let top = ctx.state.hotkeys.top(count);
    ctx.out.array(top.len());
    for hot in &top {
        ctx.out.array(3);
        ctx.out.bulk(&hot.key);
        ctx.out.int(hot.hits.min(i64::MAX as u64) as i64);
        ctx.out.double(round2(hot.rate));
    }
    Ok(())
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// INFO's `# Hotkeys`: the settings in force, the writes the per-key
/// limit shed, and the top keys as `hotkey_<i>:key=...,hits=...,rate=...`
/// (bytes outside printable ASCII, and ',' '=' '\\', as \xNN).
pub fn info_section(out: &mut String, state: &ServerState) {
    let hk = &state.hotkeys;
    let _ = write!(
        out,
        "hotkeys_sample:{}\r\nhotkeys_window_seconds:{}\r\nhotkeys_write_limit:{}\r\n\
         hotkeys_shed_writes:{}\r\n",
        hk.period(),
        hk.window_secs(),
        hk.writes.limit().unwrap_or(0),
        hk.shed_writes.load(Relaxed),
    );
    for (i, hot) in hk.top(INFO_COUNT).iter().enumerate() {
        let _ = write!(out, "hotkey_{i}:key=");
        escape_into(out, &hot.key);
        let _ = write!(out, ",hits={},rate={:.2}\r\n", hot.hits, hot.rate);
    }
}

fn escape_into(out: &mut String, key: &[u8]) {
    for &b in key {
        if b.is_ascii_graphic() && !matches!(b, b',' | b'=' | b'\\') {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}
