//! ACL and its subcommands: SETUSER GETUSER DELUSER USERS LIST WHOAMI CAT
//! GENPASS LOG DRYRUN LOAD SAVE HELP, with Redis 7.0's replies.

use std::io::Read;

use super::args::Args;
use super::context::{reply_lines, Ctx};
use super::error::{CmdError, CmdResult};
use super::table::{self, keyless, CommandDef};
use crate::acl::catalog::{category_bit, CATEGORIES};
use crate::acl::{describe, file};

const SV: &str = "server";
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];
const OPEN: &[&str] = &["noscript", "loading", "stale"];

#[rustfmt::skip]
pub static SUBCOMMANDS: &[CommandDef] = &[
    keyless("acl|cat", -2, OPEN, SV, "6.0.0", "List the ACL categories or the commands inside a category", cat),
    keyless("acl|deluser", -3, ADMIN, SV, "6.0.0", "Remove the specified ACL users and the associated rules", deluser),
    keyless("acl|dryrun", -4, ADMIN, SV, "7.0.0", "Returns whether the user can execute the given command without executing the command.", dryrun),
    keyless("acl|genpass", -2, OPEN, SV, "6.0.0", "Generate a pseudorandom secure password to use for ACL users", genpass),
    keyless("acl|getuser", 3, ADMIN, SV, "6.0.0", "Get the rules for a specific ACL user", getuser),
    keyless("acl|list", 2, ADMIN, SV, "6.0.0", "List the current ACL rules in ACL config file format", list),
    keyless("acl|load", 2, ADMIN, SV, "6.0.0", "Reload the ACLs from the configured ACL file", load),
    keyless("acl|log", -2, ADMIN, SV, "6.0.0", "List latest events denied because of ACLs in place", log),
    keyless("acl|save", 2, ADMIN, SV, "6.0.0", "Save the current ACL rules in the configured ACL file", save),
    keyless("acl|setuser", -3, ADMIN, SV, "6.0.0", "Modify or create the rules for a specific ACL user", setuser),
    keyless("acl|users", 2, ADMIN, SV, "6.0.0", "List the username of all the configured ACL rules", users),
    keyless("acl|whoami", 2, OPEN, SV, "6.0.0", "Return the name of the user associated to the current connection", whoami),
    keyless("acl|help", 2, &["loading", "stale"], SV, "6.0.0", "Show helpful text about the different subcommands", help),
];

const NO_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn catalog(ctx: &Ctx<'_>) -> &'static crate::acl::Catalog {
    super::acl_check::install(ctx.state);
    super::acl_check::catalog()
}

fn setuser(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    catalog(ctx);
    let rules: Vec<&[u8]> = args.from(3).iter().collect();
    ctx.state
        .acl
        .set_user(args.get(2), &rules)
        .map_err(|e| CmdError::Text(e.to_string()))?;
    super::acl_check::disconnect_lost_subscribers(ctx.state, args.get(2), ctx.conn);
    ctx.out.ok();
    Ok(())
}

fn getuser(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let catalog = catalog(ctx);
    let Some(user) = ctx.state.acl.get(args.get(2)) else {
        ctx.out.null();
        return Ok(());
    };
    let out = &mut ctx.out;
    out.map(6);
    out.bulk(b"flags");
    let flags = describe::flags(&user);
    out.set(flags.len());
    flags.iter().for_each(|f| out.bulk(f.as_bytes()));
    out.bulk(b"passwords");
    out.array(user.passwords.len());
    user.passwords.iter().for_each(|p| out.bulk(p.as_bytes()));
    out.bulk(b"commands");
    out.bulk(describe::command_rules(&user.selector, catalog).as_bytes());
    out.bulk(b"keys");
    out.bulk(&describe::keys(&user.selector));
    out.bulk(b"channels");
    out.bulk(&describe::channels(&user.selector));
    out.bulk(b"selectors");
    out.array(0);
    Ok(())
}

fn deluser(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    catalog(ctx);
    let names: Vec<&[u8]> = args.from(2).iter().collect();
    if names.contains(&&b"default"[..]) {
        return Err(CmdError::Static("ERR The 'default' user cannot be removed"));
    }
    let gone = ctx.state.acl.delete(&names);
    super::acl_check::disconnect_users(ctx.state, &gone, ctx.conn);
    ctx.out.int(gone.len() as i64);
    Ok(())
}

fn users(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    catalog(ctx);
    let users = ctx.state.acl.users();
    ctx.out.array(users.len());
    users.iter().for_each(|u| ctx.out.bulk(&u.name));
    Ok(())
}

fn list(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let catalog = catalog(ctx);
    let text = file::render(&ctx.state.acl.users(), catalog);
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    ctx.out.array(lines.len());
    lines.iter().for_each(|l| ctx.out.bulk(l));
    Ok(())
}

fn whoami(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    super::acl_check::refresh(ctx.state, ctx.conn);
    let name = ctx.conn.acl.user.name.clone();
    ctx.out.bulk(&name);
    Ok(())
}

fn cat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let catalog = catalog(ctx);
    if args.len() == 2 {
        ctx.out.array(CATEGORIES.len());
        CATEGORIES.iter().for_each(|c| ctx.out.bulk(c.as_bytes()));
        return Ok(());
    }
    if args.len() > 3 {
        return Err(CmdError::Arity("acl|cat"));
    }
    let Some(bit) = category_bit(args.get(2)) else {
        return Err(CmdError::quoting(
            "ERR Unknown category '",
            args.get(2),
            "'",
        ));
    };
    let names: Vec<&str> = catalog
        .walk()
        .filter(|(_, e)| e.categories & bit != 0)
        .map(|(_, e)| e.name)
        .collect();
    ctx.out.array(names.len());
    names.iter().for_each(|n| ctx.out.bulk(n.as_bytes()));
    Ok(())
}

fn genpass(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let bits = match args.len() {
        2 => 256,
        3 => match args.int(2)? {
            b @ 1..=4096 => b as usize,
            _ => return Err(CmdError::Static("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096")),
        },
        _ => return Err(CmdError::Arity("acl|genpass")),
    };
    let chars = bits.div_ceil(4);
    let mut random = vec![0u8; chars.div_ceil(2)];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .map_err(|e| CmdError::Text(format!("ERR cannot read random bytes: {e}")))?;
    let mut hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(chars);
    ctx.out.bulk(hex.as_bytes());
    Ok(())
}

fn log(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let count = match args.len() {
        2 => 10,
        3 if args.is(2, "reset") => {
            ctx.state.acl.log.reset();
            ctx.out.ok();
            return Ok(());
        }
        3 => usize::try_from(args.int(2)?).map_err(|_| CmdError::NotInteger)?,
        _ => return Err(CmdError::Arity("acl|log")),
    };
    let now = citadel_cache::unix_millis();
    let entries = ctx.state.acl.log.newest(count);
    let out = &mut ctx.out;
    out.array(entries.len());
    for e in entries {
        out.map(7);
        out.bulk(b"count");
        out.int(e.count as i64);
        out.bulk(b"reason");
        out.bulk(e.reason.as_str().as_bytes());
        out.bulk(b"context");
        out.bulk(e.context.as_str().as_bytes());
        out.bulk(b"object");
        out.bulk(&e.object);
        out.bulk(b"username");
        out.bulk(&e.username);
        out.bulk(b"age-seconds");
        out.double(now.saturating_sub(e.at_ms) as f64 / 1000.0);
        out.bulk(b"client-info");
        out.bulk(e.client_info.as_bytes());
    }
    Ok(())
}

fn dryrun(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    catalog(ctx);
    let Some(user) = ctx.state.acl.get(args.get(2)) else {
        return Err(CmdError::quoting("ERR User '", args.get(2), "' not found"));
    };
    let command = args.from(3);
    let Some((mut idx, mut def)) = table::lookup(command.get(0)) else {
        return Err(CmdError::quoting(
            "ERR Command '",
            command.get(0),
            "' not found",
        ));
    };
    if !def.subcommands.is_empty() && command.len() >= 2 {
        let Some(found) = table::lookup_sub(def, command.get(1)) else {
            return Err(CmdError::quoting(
                "ERR Command '",
                command.get(0),
                "' not found",
            ));
        };
        (idx, def) = found;
    }
    if !def.arity_ok(command.len()) {
        return Err(CmdError::Arity(def.name));
    }
    match super::acl_check::check(&user.selector, idx, def, command) {
        None => ctx.out.ok(),
        Some(denial) => {
            let text = match denial.object {
                None => format!(
                    "This user has no permissions to run the '{}' command",
                    def.name
                ),
                Some(o) => format!(
                    "This user has no permissions to access the '{}' {}",
                    String::from_utf8_lossy(o),
                    denial.reason.as_str()
                ),
            };
            ctx.out.bulk(text.as_bytes());
        }
    }
    Ok(())
}

fn acl_file(ctx: &Ctx<'_>) -> Result<std::path::PathBuf, CmdError> {
    ctx.state
        .settings
        .get(&citadel_settings::server::ACLFILE)
        .ok_or(CmdError::Static(NO_FILE))
}

fn load(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let catalog = catalog(ctx);
    let path = acl_file(ctx)?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CmdError::Text(format!(
            "ERR Error loading ACLs, opening file '{}': {e}",
            path.display()
        ))
    })?;
    let users =
        file::parse(&path, &text, catalog).map_err(|e| CmdError::Text(format!("ERR {e}")))?;
    let old = ctx.state.acl.replace_all(users);
    // As Redis: the clients of every user but `default` are closed.
    let names: Vec<Vec<u8>> = old
        .iter()
        .map(|u| u.name.clone())
        .filter(|n| n != b"default")
        .collect();
    super::acl_check::disconnect_users(ctx.state, &names, ctx.conn);
    ctx.out.ok();
    Ok(())
}

fn save(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let catalog = catalog(ctx);
    let path = acl_file(ctx)?;
    let text = file::render(&ctx.state.acl.users(), catalog);
    file::write(&path, &text).map_err(|e| {
        tracing::warn!("ACL SAVE to {} failed: {e}", path.display());
        CmdError::Static("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
    })?;
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    reply_lines(
        &mut ctx.out,
        &[
            "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
            "HELP",
            "    Prints this help.",
        ],
    );
    Ok(())
}

/// At start: the `aclfile`'s users replace the table (a bad file is an
/// error: the server does not start with users it could not read).
pub fn load_at_start(state: &crate::state::ServerState) -> Result<(), String> {
    super::acl_check::install(state);
    let Some(path) = state.settings.get(&citadel_settings::server::ACLFILE) else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read aclfile {}: {e}", path.display()))?;
    let users = file::parse(&path, &text, super::acl_check::catalog())?;
    state.acl.replace_all(users);
    Ok(())
}
