//! FUNCTION STATS's reply: the running function, if any, and the
//! libraries' counts. Its own module: the FUNCTION command and a busy
//! script's hook (`busy_door.rs`, under the script engine) both answer it.

use citadel_resp::Reply;

use crate::script::Store;

/// FUNCTION STATS's reply (also answered by a busy script's hook,
/// `busy_door.rs`).
pub(super) fn write_stats(store: &Store, out: &mut Reply<'_>) {
    let (libs, funcs) = {
        let r = store.functions();
        (r.libraries.len(), r.function_count())
    };
    let running = store.busy.running_functions();
    out.map(2);
    out.bulk(b"running_script");
    match running.first() {
        None => out.null(),
        Some(r) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(r.name.as_bytes());
            out.bulk(b"command");
            out.array(r.command.len());
            for a in &r.command {
                out.bulk(a);
            }
            out.bulk(b"duration_ms");
            out.int(r.duration_ms as i64);
        }
    }
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(libs as i64);
    out.bulk(b"functions_count");
    out.int(funcs as i64);
}
