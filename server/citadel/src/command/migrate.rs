//! MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
//! [AUTH password] [AUTH2 username password] [KEYS key [key ...]]
//! (Redis 7.0's semantics and replies).
//!
//! The keys are dumped here (DUMP's payloads, `dump.rs`) into RESTORE
//! commands; the network exchange runs on a worker off the server cores
//! (`crate::migrate`) while the client waits on `Pending::Migrate`, so a
//! slow or stopped target never holds a core. Then [`finish`] deletes
//! the keys the target restored (not with COPY), each only if it still
//! holds what was dumped: other clients ran meanwhile, and a key one of
//! them wrote keeps its new value (a write is never lost to a MIGRATE).
//! The check: WATCH's bucket version, taken before the dump, still
//! holds at a transaction's commit that deletes the key; when it does
//! not (a write to the key, or to another key of its bucket), the key
//! stays: a copy left behind, never a write lost. (Comparing values
//! instead would delete a key MIGRATEd onto this very server.)
//!
//! MIGRATE waits for the network, which nothing inside MULTI/EXEC or a
//! script may do here: it is refused there with an error (Redis blocks
//! its whole server meanwhile).

use citadel_cache::CacheHandle;

use super::args::Args;
use super::context::{Ctx, Pending};
use super::dump::dump_key;
use super::error::{CmdError, CmdResult};
use super::migrate_plan::{MigratePlan, SentKey};
use crate::forward::encode_command;
use crate::migrate::{Auth, Job, MigrateOutcome};

/// Arguments before the options: MIGRATE host port key db timeout.
const FIRST_OPTION: usize = 6;

/// MIGRATE's options, parsed left to right as Redis does.
struct Options<'a> {
    copy: bool,
    replace: bool,
    user: Option<&'a [u8]>,
    password: Option<&'a [u8]>,
    /// The keys: argument 3 alone, or those after KEYS.
    keys: std::ops::Range<usize>,
}

impl<'a> Options<'a> {
    /// `secrets`: the positions of the passwords (and AUTH2's user)
    /// parsed, which Redis redacts for MONITOR and the slow log.
    fn parse(args: &Args<'a>, secrets: &mut Vec<usize>) -> Result<Options<'a>, CmdError> {
        let mut o = Options {
            copy: false,
            replace: false,
            user: None,
            password: None,
            keys: 3..4,
        };
        let mut j = FIRST_OPTION;
        while j < args.len() {
            let more = args.len() - 1 - j;
            if args.is(j, "copy") {
                o.copy = true;
            } else if args.is(j, "replace") {
                o.replace = true;
            } else if args.is(j, "auth") && more >= 1 {
                j += 1;
                o.password = Some(args.get(j));
                secrets.push(j);
            } else if args.is(j, "auth2") && more >= 2 {
                o.user = Some(args.get(j + 1));
                o.password = Some(args.get(j + 2));
                secrets.extend([j + 1, j + 2]);
                j += 2;
            } else if args.is(j, "keys") {
                if !args.get(3).is_empty() {
                    return Err(CmdError::Static(
                        "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                    ));
                }
                o.keys = j + 1..args.len();
                break;
            } else {
                // An unknown word, or AUTH / AUTH2 short of arguments.
                return Err(CmdError::Syntax);
            }
            j += 1;
        }
        Ok(o)
    }

    fn auth(&self) -> Option<Auth> {
        Some(Auth {
            user: self.user.map(<[u8]>::to_vec),
            password: self.password?.to_vec(),
        })
    }
}

/// MIGRATE's keys, as Redis 7.0 finds them (COMMAND GETKEYS, cluster
/// routing, ACL key checks): those after KEYS when the key argument is
/// empty (AUTH's and AUTH2's values are skipped), else the key argument
/// (a KEYS last of all names none: its key spec's keyword search, which
/// Redis then follows, stops before the last argument).
pub fn migrate_keys<'a>(args: Args<'a>, f: &mut dyn FnMut(&'a [u8])) {
    let mut i = FIRST_OPTION;
    while i < args.len() {
        if args.is(i, "auth") {
            i += 1;
        } else if args.is(i, "auth2") {
            i += 2;
        } else if args.is(i, "keys") && args.get(3).is_empty() && i + 1 < args.len() {
            (i + 1..args.len()).for_each(|k| f(args.get(k)));
            return;
        }
        i += 1;
    }
    if args.len() > 3 {
        f(args.get(3));
    }
}

/// The arguments MONITOR and the slow log show as "(redacted)".
pub fn secret_args(args: Args<'_>) -> Vec<usize> {
    let mut secrets = Vec::new();
    let _ = Options::parse(&args, &mut secrets);
    secrets
}

pub fn migrate(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let opts = Options::parse(&args, &mut Vec::new())?;
    let timeout = args.int(5)?;
    let db = args.int(4)?;
    // Bounded as poll(2) bounds Redis's wait (and an Instant can add it).
    let timeout = if timeout <= 0 {
        1000
    } else {
        timeout.min(i64::from(i32::MAX)) as u64
    };
    if !super::blocking::may_block(ctx) {
        return Err(CmdError::Static(
            "ERR MIGRATE is not allowed inside MULTI/EXEC or scripts (it waits for the target)",
        ));
    }
    // In cluster mode the target may be importing the keys' slots.
    let verb: &[u8] = match ctx.thread.cluster {
        Some(_) => b"RESTORE-ASKING",
        None => b"RESTORE",
    };
    let cache = &mut ctx.thread.cache;
    let now = cache.now_ms();
    let mut restores = Vec::new();
    let mut sent = Vec::new();
    for i in opts.keys.clone() {
        let key = args.get(i);
        let watch = cache.watch(key);
        let Some(dumped) = dump_key(cache, key, &mut ctx.conn.scratch)? else {
            continue; // missing or expired: skipped
        };
        let ttl = match dumped.expire_at {
            None => 0,
            Some(at) if at < now => continue,
            Some(at) => (at - now).max(1),
        };
        let ttl = ttl.to_string();
        let mut words = vec![verb, key, ttl.as_bytes(), &dumped.payload];
        if opts.replace {
            words.push(b"REPLACE");
        }
        encode_command(&mut restores, words.len(), words);
        sent.push(SentKey {
            key: key.into(),
            watch,
        });
    }
    if sent.is_empty() {
        ctx.out.simple(b"NOKEY");
        return Ok(());
    }
    let id = ctx.thread.next_migrate();
    ctx.state.migrator.submit(Job {
        thread: ctx.thread.index,
        id,
        host: String::from_utf8_lossy(args.get(1)).into_owned(),
        port: String::from_utf8_lossy(args.get(2)).into_owned(),
        db,
        timeout: std::time::Duration::from_millis(timeout),
        auth: opts.auth(),
        restores,
        keys: sent.len(),
    });
    ctx.conn.pending = Some(Pending::Migrate {
        id,
        plan: Box::new(MigratePlan {
            keys: sent,
            copy: opts.copy,
        }),
    });
    Ok(())
}

/// The target answered (or failed): the keys it restored go (unless
/// COPY, and only if unchanged since the dump), then the reply.
pub fn finish(ctx: &mut Ctx<'_>, plan: MigratePlan, outcome: MigrateOutcome) -> CmdResult {
    if !plan.copy && outcome.restored.contains(&true) {
        if let Some((idx, _)) = super::table::lookup(b"migrate") {
            // Their changes are MIGRATE's: Redis's `del` events.
            ctx.thread.cache.set_change_tag(idx as u16);
        }
        let restored: Vec<&SentKey> = plan
            .keys
            .iter()
            .zip(&outcome.restored)
            .filter_map(|(sent, &ok)| ok.then_some(sent))
            .collect();
        delete_unchanged(&mut ctx.thread.cache, &restored);
        // Keyspace events and invalidations of tracking clients.
        super::key_events::flush(ctx.state, ctx.thread, Some(ctx.conn.client.id), None);
    }
    outcome.result.map_err(|e| CmdError::Text(e.to_string()))?;
    ctx.out.ok();
    Ok(())
}

/// Conflicting commits retried before the keys are left in place.
const DELETE_ATTEMPTS: usize = 8;

/// Deletes each key whose bucket is unchanged since its dump (as EXEC
/// after WATCH), all in one transaction: checked and deleted one by one, a
/// delete changes its bucket's version, and a later key sharing that
/// bucket would look written meanwhile and stay. A commit that conflicts
/// (another core wrote one of the buckets meanwhile) checks again.
fn delete_unchanged(cache: &mut CacheHandle, keys: &[&SentKey]) {
    let names: Vec<&[u8]> = keys.iter().map(|k| &k.key[..]).collect();
    for _ in 0..DELETE_ATTEMPTS {
        cache.txn_begin(&names);
        for sent in keys {
            if cache.txn_watches_hold([sent.watch]) {
                cache.delete(&sent.key);
            }
        }
        match cache.txn_commit() {
            Ok(true) => return,
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!("MIGRATE: deleting the moved keys failed: {e}");
                return;
            }
        }
    }
    cache.txn_abort();
    tracing::warn!(
        keys = keys.len(),
        "MIGRATE: the moved keys' buckets kept changing; they were left in place"
    );
}
