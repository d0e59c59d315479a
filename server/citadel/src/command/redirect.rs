//! Cluster mode's routing of keyed commands, before they run or queue:
//! keys in different slots are refused (`-CROSSSLOT`), a slot another node
//! owns is redirected (`-MOVED <slot> <host:port>`), and an isolated node
//! serves no slot (`-CLUSTERDOWN`). Keyless commands run here. Off (no
//! `ThreadView`), the dispatcher skips this entirely.
//!
//! Cost per keyed command in cluster mode: CRC16 of each key (its hash
//! tag), one atomic load of the cluster generation, one table lookup.

use citadel_cluster::{KeySlots, Route, ThreadView};

use super::args::Args;
use super::error::{CmdError, CmdResult};
use super::queue::TxState;
use super::table::CommandDef;

/// Whether this node serves `def` with `args` (its keys by its key spec).
#[inline]
pub fn check(view: &mut ThreadView, def: &CommandDef, args: Args<'_>) -> CmdResult {
    let mut slots = KeySlots::default();
    def.for_each_key(args, |key| slots.add(key));
    route(view, slots)
}

/// EXEC: every queued command's keys must share one slot this node owns
/// (each was checked when queued; the map may have changed since).
pub fn check_queue(view: &mut ThreadView, tx: &TxState) -> CmdResult {
    let mut slots = KeySlots::default();
    for i in 0..tx.len() {
        let (_, def, args) = tx.command(i);
        def.for_each_key(args, |key| slots.add(key));
    }
    route(view, slots)
}

fn route(view: &mut ThreadView, slots: KeySlots) -> CmdResult {
    let Some(slot) = slots.slot().map_err(|_| CmdError::CrossSlot)? else {
        return Ok(());
    };
    match view.current().route(slot) {
        Route::Local => Ok(()),
        Route::Moved(owner) => Err(CmdError::Moved {
            slot,
            addr: owner.addr.clone(),
        }),
        Route::Down => Err(CmdError::ClusterDown),
    }
}
