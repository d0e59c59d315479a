//! The command layer's side of overload protection: each command's class
//! for the shedding order (worked out once from the table), and the check
//! dispatch makes before a command runs (core admission, quotas).

use std::sync::OnceLock;

use super::args::Args;
use super::context::ConnState;
use super::error::CmdError;
use super::table::{self, CommandDef};
use crate::overload::{CommandClass, Identity};
use crate::thread::ThreadCtx;

/// The class of the command or subcommand with global index `idx`.
fn class_of(idx: usize) -> CommandClass {
    static CLASSES: OnceLock<Vec<CommandClass>> = OnceLock::new();
    let classes = CLASSES.get_or_init(|| (0..).map_while(table::by_index).map(classify).collect());
    classes.get(idx).copied().unwrap_or(CommandClass::Admin)
}

/// Compute: plugin and pipeline calls, scripts and functions. Admin: what
/// an operator or a health check needs while the server sheds (the
/// connection, server, transactions and cluster groups, anything flagged
/// admin or allowed before AUTH, and Pub/Sub's subscriptions). Then writes
/// and reads by their flags.
fn classify(def: &CommandDef) -> CommandClass {
    const COMPUTE: &[&str] = &[
        "plugin|call",
        "pipeline|call",
        "eval",
        "evalsha",
        "eval_ro",
        "evalsha_ro",
        "fcall",
        "fcall_ro",
    ];
    const ADMIN_GROUPS: &[&str] = &["connection", "server", "transactions", "cluster"];
    if COMPUTE.contains(&def.name) {
        CommandClass::Compute
    } else if def.has_flag("admin")
        || def.has_flag("no_auth")
        || ADMIN_GROUPS.contains(&def.group)
        || (def.group == "pubsub" && !def.name.ends_with("publish"))
    {
        CommandClass::Admin
    } else if def.has_flag("write") || def.group == "pubsub" {
        // PUBLISH: its fan-out is work like a write's.
        CommandClass::Write
    } else {
        CommandClass::Read
    }
}

/// Whether the command may run now; the refusal (`-OVERLOAD ...`) if the
/// core sheds it or a quota is spent.
pub fn check(
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    idx: usize,
    def: &CommandDef,
    args: Args<'_>,
) -> Option<CmdError> {
    let overload = thread.overload.as_mut()?;
    let class = class_of(idx);
    if class == CommandClass::Admin {
        return None;
    }
    let mut first_key = None;
    if overload.has_prefix_quotas() {
        def.for_each_key(args, |k| {
            first_key.get_or_insert(k);
        });
    }
    let (client, authed) = (&conn.client, conn.authed);
    let who = || Identity::of(client, authed);
    overload
        .check(&mut conn.overload, who, None, class, first_key)
        .err()
        .map(|refusal| CmdError::Text(refusal.text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_admin_reads_writes_and_calls_are_told_apart() {
        let class = |name: &str| {
            let (idx, def) = table::lookup(name.as_bytes()).unwrap();
            let _ = def;
            class_of(idx)
        };
        for admin in [
            "ping",
            "info",
            "config",
            "client",
            "hello",
            "auth",
            "shutdown",
            "subscribe",
        ] {
            assert_eq!(class(admin), CommandClass::Admin, "{admin}");
        }
        assert_eq!(class("get"), CommandClass::Read);
        assert_eq!(class("lrange"), CommandClass::Read);
        assert_eq!(class("set"), CommandClass::Write);
        assert_eq!(class("publish"), CommandClass::Write);
        assert_eq!(class("eval"), CommandClass::Compute);
        let plugin = table::lookup(b"plugin").unwrap().1;
        let (idx, _) = table::lookup_sub(plugin, b"call").unwrap();
        assert_eq!(class_of(idx), CommandClass::Compute);
    }
}
