//! DEBUG PANIC | SLEEP seconds | OBJECT key | RELOAD | HELP, allowed by `enable-debug-command`
//! (no by default, as in Redis). DEBUG PANIC panics while serving the
//! calling connection: the loop closes that connection, logs and counts it
//! (INFO `connection_panics`), and the server goes on; Redis would crash.

use citadel_settings::{server as setting, DebugCommand};

use super::args::Args;
use super::context::{reply_lines, Ctx};
use super::error::{CmdError, CmdResult};

/// DEBUG OBJECT: Redis's line, with the cache's numbers (`lru` carries
/// the frequency bits, as Redis's carries LFU data under an LFU policy;
/// `stored_bytes` is the item's footprint, as MEMORY USAGE).
fn object(ctx: &mut Ctx<'_>, key: &[u8]) -> CmdResult {
    let found = ctx.thread.cache.peek_with_freq(key, |item| {
        let mut head = Vec::with_capacity(45);
        for piece in item.value_range(0, 45) {
            piece.append_to(&mut head);
        }
        (head, item.value_len(), item.stored_len())
    });
    let Some(((head, len, stored), freq)) = found else {
        return Err(CmdError::NoSuchKey);
    };
    let encoding = if len > 44 {
        "raw"
    } else {
        super::object::string_encoding(&head)
    };
    let line = format!(
        "Value at:0x0 refcount:1 encoding:{encoding} serializedlength:{len} lru:{freq} \
         stored_bytes:{stored}"
    );
    ctx.out.simple(line.as_bytes());
    Ok(())
}

const NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is \
    set to \"local\", you can run it from a local connection, otherwise you need to set this \
    option in the configuration file, and then restart the server.";

pub fn debug(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let allowed = match ctx.state.settings.get(&setting::ENABLE_DEBUG_COMMAND) {
        DebugCommand::Yes => true,
        DebugCommand::Local => ctx.conn.client.peer.is_local(),
        DebugCommand::No => false,
    };
    if !allowed {
        return Err(CmdError::Static(NOT_ALLOWED));
    }
    if args.is(1, "panic") && args.len() == 2 {
        tracing::warn!(client = ctx.conn.client.id, "DEBUG PANIC");
        panic!("DEBUG PANIC from client {}", ctx.conn.client.id);
    }
    if args.is(1, "sleep") && args.len() == 3 {
        // Blocks this core, as Redis's DEBUG SLEEP blocks the server.
        let secs = args.float(2)?;
        if !(0.0..=3600.0).contains(&secs) {
            return Err(CmdError::Static("ERR DEBUG SLEEP takes 0 to 3600 seconds"));
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(secs));
        ctx.out.ok();
        return Ok(());
    }
    if args.is(1, "reload") {
        // Redis saves and loads its RDB file back; the cache file is what
        // is served, so saving it is the whole of it.
        super::save::save_files(ctx.state)?;
        ctx.out.ok();
        return Ok(());
    }
    if args.is(1, "object") && args.len() == 3 {
        return object(ctx, args.get(2));
    }
    if args.is(1, "help") && args.len() == 2 {
        reply_lines(
            &mut ctx.out,
            &[
                "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "PANIC",
                "    Panic while serving this connection: it is closed, the server goes on.",
                "OBJECT <key>",
                "    Show low level info about the <key> and its value.",
                "RELOAD [option ...]",
                "    Save the cache file (as SAVE); it is what is served, so nothing is loaded.",
                "SLEEP <seconds>",
                "    Stop serving this connection's core for <seconds>.",
                "HELP",
                "    Print this help.",
            ],
        );
        return Ok(());
    }
    Err(CmdError::quoting(
        "ERR unknown subcommand or wrong number of arguments for '",
        args.get(1),
        "'. Try DEBUG HELP.",
    ))
}
