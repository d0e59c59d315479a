//! XGROUP CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER and HELP
//! (Redis 7.0's `xgroupCommand`): each one update of the stream's root,
//! plus the PEL pages DESTROY and DELCONSUMER drop or rewrite.

use citadel_collections::stream::group::INVALID_ENTRIES_READ;
use citadel_collections::stream::{Group, StreamId};

use super::super::paged::{update_paged_fresh, PagePlan, Step};
use super::args::strict_id;
use super::edit::{step, Fail, StreamTxn};
use super::pel::{self, planned_group};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sub {
    Create,
    SetId,
    Destroy,
    CreateConsumer,
    DelConsumer,
}

/// What an XGROUP subcommand answers.
enum Answer {
    Ok,
    Int(i64),
}

/// Redis's `addReplySubcommandSyntaxError` for XGROUP.
fn sub_syntax(args: &Args<'_>) -> CmdError {
    CmdError::quoting(
        "ERR unknown subcommand or wrong number of arguments for '",
        &args.get(1)[..args.get(1).len().min(128)],
        "'. Try XGROUP HELP.",
    )
}

/// A group's starting ID: `$` (the stream's last), else an ID (`-` and
/// `+` too where `loose`, as SETID reads it).
fn group_id(arg: &[u8], last: StreamId, loose: bool) -> Result<StreamId, CmdError> {
    match arg {
        b"$" => Ok(last),
        b"-" if loose => Ok(StreamId::MIN),
        b"+" if loose => Ok(StreamId::MAX),
        _ => strict_id(arg, 0),
    }
}

fn run(ctx: &mut Ctx<'_>, args: Args<'_>, sub: Sub) -> CmdResult {
    let mut mkstream = false;
    let mut entries_read = INVALID_ENTRIES_READ;
    let mut i = 5;
    while i < args.len() {
        if sub == Sub::Create && args.is(i, "mkstream") {
            mkstream = true;
            i += 1;
        } else if matches!(sub, Sub::Create | Sub::SetId)
            && args.is(i, "entriesread")
            && i + 1 < args.len()
        {
            entries_read = args.int(i + 1)?;
            if entries_read < 0 && entries_read != INVALID_ENTRIES_READ {
                return Err(CmdError::Static(
                    "ERR value for ENTRIESREAD must be positive or -1",
                ));
            }
            i += 2;
        } else {
            return Err(sub_syntax(&args));
        }
    }
    let key = args.get(2);
    let name = args.get(3);
    let plan = |user: usize, root: &[u8], plan: &mut PagePlan| {
        if matches!(sub, Sub::Destroy | Sub::DelConsumer) {
            if let Some((_, g)) = planned_group(root, name) {
                pel::plan_scan(&g, StreamId::MIN, 0, user, plan);
            }
        }
        Ok(())
    };
    let answer = update_paged_fresh(
        &mut ctx.thread.cache,
        &[key],
        plan,
        |items, changes, plan| {
            let mut s = match StreamTxn::open(items, plan, 0)? {
                Some(s) => s,
                None if mkstream => match StreamTxn::create(items, plan, 0) {
                    Some(s) => s,
                    None => return Ok(Step::Fresh(vec![(0, 0..1)])),
                },
                None => return Err(CmdError::Static(
                    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
                )),
            };
            let found = s.find_group(name)?;
            if found.is_none() && !matches!(sub, Sub::Create | Sub::Destroy) {
                return Err(CmdError::Text(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(key)
                )));
            }
            step(
                apply(&mut s, &args, sub, found, entries_read).and_then(|(answer, wrote)| {
                    if wrote {
                        s.commit(changes)?;
                    }
                    Ok(answer)
                }),
            )
        },
    )?;
    match answer {
        Answer::Ok => ctx.out.ok(),
        Answer::Int(n) => ctx.out.int(n),
    }
    Ok(())
}

/// The subcommand on the open stream; returns the answer and whether the
/// stream changed.
fn apply(
    s: &mut StreamTxn<'_, '_>,
    args: &Args<'_>,
    sub: Sub,
    found: Option<usize>,
    entries_read: i64,
) -> Result<(Answer, bool), Fail> {
    let name = args.get(3);
    let now = citadel_cache::unix_millis();
    match sub {
        Sub::Create => {
            if args.len() > 8 {
                return Err(sub_syntax(args).into());
            }
            let id = group_id(args.get(4), s.root.meta.last_id, false)?;
            if found.is_some() {
                return Err(
                    CmdError::Static("BUSYGROUP Consumer Group name already exists").into(),
                );
            }
            let groups = s.groups()?;
            let at = groups.partition_point(|g| g.name.as_slice() < name);
            groups.insert(at, Group::new(name, id, entries_read));
            Ok((Answer::Ok, true))
        }
        Sub::SetId => {
            if args.len() != 5 && args.len() != 7 {
                return Err(sub_syntax(args).into());
            }
            let id = group_id(args.get(4), s.root.meta.last_id, true)?;
            let g = s.group(found.expect("checked"));
            g.last_id = id;
            g.entries_read = entries_read;
            Ok((Answer::Ok, true))
        }
        Sub::Destroy => {
            let Some(g) = found else {
                return Ok((Answer::Int(0), false));
            };
            let pages: Vec<u64> = s.group(g).pel.iter().map(|p| p.page).collect();
            for page in pages {
                s.set_page(page, None)?;
            }
            s.groups()?.remove(g);
            Ok((Answer::Int(1), true))
        }
        Sub::CreateConsumer => {
            let (_, created) = s
                .group(found.expect("checked"))
                .add_consumer(args.get(4), now);
            Ok((Answer::Int(i64::from(created)), created))
        }
        Sub::DelConsumer => {
            let g = found.expect("checked");
            let Ok(c) = s.group(g).consumer(args.get(4)) else {
                return Ok((Answer::Int(0), false));
            };
            let consumer = s.group(g).consumers[c].clone();
            let mut ids = Vec::new();
            if consumer.pending > 0 {
                pel::scan(s, g, StreamId::MIN, StreamId::MAX, |p| {
                    if p.consumer == consumer.id {
                        ids.push(p.id);
                    }
                    true
                })?;
            }
            for id in ids {
                pel::remove(s, g, id)?;
            }
            s.group(g).consumers.remove(c);
            Ok((Answer::Int(consumer.pending as i64), true))
        }
    }
}

pub fn create(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Sub::Create)
}

pub fn setid(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Sub::SetId)
}

pub fn destroy(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Sub::Destroy)
}

pub fn createconsumer(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Sub::CreateConsumer)
}

pub fn delconsumer(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Sub::DelConsumer)
}

/// XGROUP HELP
pub fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    crate::command::context::reply_lines(
        &mut ctx.out,
        &[
            "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
            "HELP",
            "    Prints this help.",
        ],
    );
    Ok(())
}
