//! COMMAND and its subcommands (COUNT INFO DOCS LIST GETKEYS
//! GETKEYSANDFLAGS HELP), in the
//! Redis 7 reply shapes that redis-cli and client libraries parse.

use super::args::Args;
use super::context::{reply_lines, Ctx};
use super::doc_arg::Arg;
use super::error::{CmdError, CmdResult};
use super::generated::cmd_info::CMD_INFO;
use super::generated::docs_args::DOCS_ARGS;
use super::info_spec::{write_key_spec, Begin, Find, Info, KeySpec};
use super::table::{keyless, lookup, lookup_sub, top_level, top_level_count, CommandDef, Handler};
use crate::glob::glob_match;
use citadel_resp::Reply;

const fn sub(
    name: &'static str,
    arity: i32,
    summary: &'static str,
    handler: Handler,
) -> CommandDef {
    keyless(
        name,
        arity,
        &["loading", "stale"],
        "server",
        "7.0.0",
        summary,
        handler,
    )
}

#[rustfmt::skip]
pub static SUBCOMMANDS: &[CommandDef] = &[
    sub("command|count", 2, "Returns a count of commands.", count),
    sub("command|info", -2, "Returns information about one, multiple or all commands.", info),
    sub("command|docs", -2, "Returns documentary information about one, multiple or all commands.", docs),
    sub("command|list", -2, "Returns a list of command names.", list),
    sub("command|getkeys", -4, "Extracts the key names from an arbitrary command.", getkeys),
    sub("command|getkeysandflags", -4, "Extracts the key names and access flags for an arbitrary command.", getkeysandflags),
    sub("command|help", 2, "Returns helpful text about the different subcommands.", help),
];

/// Redis's own COMMAND INFO fields for a command it also has.
pub(super) fn redis_info(name: &str) -> Option<&'static Info> {
    CMD_INFO
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| &CMD_INFO[i].1)
}

/// ACL categories: Redis's where it has the command, else derived.
pub(super) fn categories(def: &CommandDef) -> Vec<&'static str> {
    match redis_info(def.name) {
        Some(info) => info.acl.to_vec(),
        None => derived_categories(def),
    }
}

/// ACL categories of a Citadel-only command, derived from flags and group.
fn derived_categories(def: &CommandDef) -> Vec<&'static str> {
    let mut cats = Vec::new();
    if def.has_flag("write") {
        cats.push("@write");
    }
    if def.has_flag("readonly") {
        cats.push("@read");
    }
    cats.push(match def.group {
        "string" => "@string",
        "hash" => "@hash",
        "list" => "@list",
        "set" => "@set",
        "sorted-set" => "@sortedset",
        "geo" => "@geo",
        "generic" => "@keyspace",
        "connection" => "@connection",
        _ => "@admin",
    });
    if def.group == "server"
        && def.keys.0 == 0
        && !def.has_flag("readonly")
        && !def.has_flag("write")
    {
        cats.push("@dangerous");
    }
    cats.push(if def.has_flag("fast") {
        "@fast"
    } else {
        "@slow"
    });
    cats
}

/// The one key spec of a Citadel-only command, from its first/last/step.
fn derived_key_spec(def: &CommandDef) -> KeySpec {
    let (first, last, step) = def.keys;
    KeySpec {
        notes: None,
        flags: if def.has_flag("write") {
            &["RW", "update"]
        } else {
            &["RO", "access"]
        },
        begin: Begin::Index(first.into()),
        find: Find::Range {
            lastkey: if last < 0 { last } else { last - first }.into(),
            keystep: step.into(),
            limit: 0,
        },
    }
}

/// One COMMAND / COMMAND INFO entry (10 fields, as Redis 7).
fn entry(out: &mut Reply<'_>, def: &CommandDef) {
    out.array(10);
    out.bulk(def.name.as_bytes());
    out.int(def.arity.into());
    out.set(def.flags.len());
    def.flags.iter().for_each(|f| out.simple(f.as_bytes()));
    out.int(def.keys.0.into());
    out.int(def.keys.1.into());
    out.int(def.keys.2.into());
    let cats = categories(def);
    out.set(cats.len());
    cats.iter().for_each(|c| out.simple(c.as_bytes()));
    // Tips, key specs and subcommands are sets in RESP3, as Redis 7 sends them.
    if let Some(info) = redis_info(def.name) {
        out.set(info.tips.len());
        info.tips.iter().for_each(|t| out.bulk(t.as_bytes()));
        out.set(info.key_specs.len());
        info.key_specs.iter().for_each(|s| write_key_spec(out, s));
    } else if def.keys.0 > 0 {
        out.set(0);
        out.set(1);
        write_key_spec(out, &derived_key_spec(def));
    } else {
        out.set(0);
        out.set(0);
    }
    out.set(def.subcommands.len());
    def.subcommands.iter().for_each(|s| entry(out, s));
}

pub fn command(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ctx.out.array(top_level_count());
    top_level().for_each(|d| entry(&mut ctx.out, d));
    Ok(())
}

fn count(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ctx.out.int(top_level_count() as i64);
    Ok(())
}

/// A command by its name or "parent|sub" name.
fn find(name: &[u8]) -> Option<&'static CommandDef> {
    match name.iter().position(|&c| c == b'|') {
        None => lookup(name).map(|(_, d)| d),
        Some(bar) => lookup_sub(lookup(&name[..bar])?.1, &name[bar + 1..]).map(|(_, d)| d),
    }
}

fn info(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() == 2 {
        return command(ctx, args);
    }
    ctx.out.array(args.len() - 2);
    for name in args.from(2).iter() {
        match find(name) {
            Some(def) => entry(&mut ctx.out, def),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn doc_args(name: &str) -> Option<&'static [Arg]> {
    DOCS_ARGS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

fn opt_field(out: &mut Reply<'_>, field: &str, value: Option<&str>) {
    if let Some(v) = value {
        out.bulk(field.as_bytes());
        out.bulk(v.as_bytes());
    }
}

/// An `arguments` list, field by field in Redis 7's order.
fn arg_list(out: &mut Reply<'_>, args: &[Arg]) {
    out.array(args.len());
    for a in args {
        let present = [
            a.display_text.is_some(),
            a.key_spec_index.is_some(),
            a.token.is_some(),
            a.summary.is_some(),
            a.since.is_some(),
            a.deprecated_since.is_some(),
            !a.flags.is_empty(),
            a.arguments.is_some(),
        ];
        out.map(2 + present.iter().filter(|&&p| p).count());
        out.bulk(b"name");
        out.bulk(a.name.as_bytes());
        out.bulk(b"type");
        out.bulk(a.kind.as_bytes());
        opt_field(out, "display_text", a.display_text);
        if let Some(i) = a.key_spec_index {
            out.bulk(b"key_spec_index");
            out.int(i);
        }
        opt_field(out, "token", a.token);
        opt_field(out, "summary", a.summary);
        opt_field(out, "since", a.since);
        opt_field(out, "deprecated_since", a.deprecated_since);
        if !a.flags.is_empty() {
            out.bulk(b"flags");
            out.set(a.flags.len());
            a.flags.iter().for_each(|f| out.simple(f.as_bytes()));
        }
        if let Some(sub) = a.arguments {
            out.bulk(b"arguments");
            arg_list(out, sub);
        }
    }
}

fn doc(out: &mut Reply<'_>, def: &CommandDef) {
    out.bulk(def.name.as_bytes());
    let has_subs = !def.subcommands.is_empty();
    let args = doc_args(def.name);
    out.map(3 + usize::from(args.is_some()) + usize::from(has_subs));
    out.bulk(b"summary");
    out.bulk(def.summary.as_bytes());
    out.bulk(b"since");
    out.bulk(def.since.as_bytes());
    out.bulk(b"group");
    out.bulk(def.group.as_bytes());
    if let Some(args) = args {
        out.bulk(b"arguments");
        arg_list(out, args);
    }
    if has_subs {
        out.bulk(b"subcommands");
        out.map(def.subcommands.len());
        def.subcommands.iter().for_each(|s| doc(out, s));
    }
}

fn docs(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() == 2 {
        ctx.out.map(top_level_count());
        top_level().for_each(|d| doc(&mut ctx.out, d));
        return Ok(());
    }
    let found: Vec<_> = args.from(2).iter().filter_map(find).collect();
    ctx.out.map(found.len());
    found.into_iter().for_each(|d| doc(&mut ctx.out, d));
    Ok(())
}

fn list(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let all = top_level().flat_map(|d| std::iter::once(d).chain(d.subcommands));
    let names: Vec<&str> = match args.len() {
        2 => all.map(|d| d.name).collect(),
        5 if args.is(2, "filterby") => {
            let v = args.get(4);
            if args.is(3, "pattern") {
                all.filter(|d| glob_match(v, d.name.as_bytes()))
                    .map(|d| d.name)
                    .collect()
            } else if args.is(3, "aclcat") {
                all.filter(|d| {
                    categories(d)
                        .iter()
                        .any(|c| c.as_bytes()[1..].eq_ignore_ascii_case(v))
                })
                .map(|d| d.name)
                .collect()
            } else if args.is(3, "module") {
                Vec::new()
            } else {
                return Err(CmdError::Syntax);
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    ctx.out.array(names.len());
    names.iter().for_each(|n| ctx.out.bulk(n.as_bytes()));
    Ok(())
}

/// The command (or subcommand) GETKEYS and GETKEYSANDFLAGS are asked about.
fn asked_about(cmd: Args<'_>) -> Result<&'static CommandDef, CmdError> {
    let mut def = lookup(cmd.get(0))
        .ok_or(CmdError::Static("ERR Invalid command specified"))?
        .1;
    if !def.subcommands.is_empty() && cmd.len() >= 2 {
        def = lookup_sub(def, cmd.get(1))
            .ok_or(CmdError::Static("ERR Invalid command specified"))?
            .1;
    }
    Ok(def)
}

/// COMMAND GETKEYSANDFLAGS: [key, flags] pairs by the command's key specs
/// (Redis's where it has the command, else derived from the table).
fn getkeysandflags(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cmd = args.from(2);
    let def = asked_about(cmd)?;
    let derived;
    let specs: &[KeySpec] = match redis_info(def.name) {
        Some(info) => info.key_specs,
        None if def.keys.0 > 0 && def.find_keys.is_none() => {
            derived = [derived_key_spec(def)];
            &derived
        }
        None => &[],
    };
    if specs.is_empty() {
        return Err(CmdError::Static("ERR The command has no key arguments"));
    }
    check_arity(def, cmd)?;
    match super::key_flags::keys_and_flags(def, specs, cmd) {
        Some(keys) if !keys.is_empty() => {
            ctx.out.array(keys.len());
            for (key, flags) in keys {
                ctx.out.array(2);
                ctx.out.bulk(key);
                ctx.out.set(flags.len());
                flags.iter().for_each(|f| ctx.out.simple(f.as_bytes()));
            }
            Ok(())
        }
        _ if def.has_flag("no_mandatory_keys") => {
            ctx.out.array(0);
            Ok(())
        }
        _ => Err(CmdError::Static(
            "ERR Invalid arguments specified for command",
        )),
    }
}

fn check_arity(def: &CommandDef, cmd: Args<'_>) -> Result<(), CmdError> {
    if def.arity_ok(cmd.len()) {
        Ok(())
    } else {
        Err(CmdError::Static(
            "ERR Invalid number of arguments specified for command",
        ))
    }
}

fn getkeys(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cmd = args.from(2);
    let def = asked_about(cmd)?;
    check_arity(def, cmd)?;
    if def.find_keys.is_some() {
        // Keys after a numkeys argument (EVAL, ZUNION, ZMPOP ...).
        let mut keys = Vec::new();
        def.keys_of(cmd, &mut keys);
        // EVAL with no keys: none to list, as Redis (CMD_NO_MANDATORY_KEYS).
        if keys.is_empty() && !def.has_flag("no_mandatory_keys") {
            return Err(CmdError::Static(
                "ERR Invalid arguments specified for command",
            ));
        }
        ctx.out.array(keys.len());
        keys.into_iter().for_each(|k| ctx.out.bulk(k));
        return Ok(());
    }
    let (first, last, step) = def.keys;
    if first == 0 {
        return Err(CmdError::Static("ERR The command has no key arguments"));
    }
    let last = if last < 0 {
        cmd.len() as i32 + last
    } else {
        last.min(cmd.len() as i32 - 1)
    };
    let positions: Vec<usize> = (first..=last)
        .step_by(step.max(1) as usize)
        .map(|i| i as usize)
        .collect();
    ctx.out.array(positions.len());
    positions.into_iter().for_each(|i| ctx.out.bulk(cmd.get(i)));
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    reply_lines(
        &mut ctx.out,
        &[
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "    Return details about all commands.",
            "COUNT",
            "    Return the total number of commands in this server.",
            "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
            "    Return a list of all commands in this server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple commands.",
            "GETKEYS <full-command>",
            "    Return the keys from a full command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full command.",
            "HELP",
            "    Print this help.",
        ],
    );
    Ok(())
}
