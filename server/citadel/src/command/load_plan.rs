//! What a command parked on read-through loads will reply: the replies of
//! the keys it already had, rendered, and which slots wait
//! (`loading::render` writes it once they finished); and what a command
//! parked on warm hand-offs waits for (`handoff::settle`).

use std::ops::Range;

use super::set_options::Change;

pub struct Plan {
    /// MGET: an array of every slot.
    pub array: bool,
    pub slots: Vec<Slot>,
    /// Replies of the slots that needed no load, back to back.
    pub rendered: Vec<u8>,
    /// GETEX with options: apply them to the loaded key, then reply.
    pub getex: Option<(Vec<u8>, Change<'static>)>,
}

pub enum Slot {
    Rendered(Range<usize>),
    Load,
}

/// A command parked on warm hand-offs (`handoff.rs`): the keys it waits
/// for from their previous owners (it runs again once they are restored).
pub struct HandoffPlan {
    /// The keys asked for.
    pub keys: Vec<Box<[u8]>>,
    /// Per part of the job (one per previous owner): its keys' positions
    /// in `keys`, in the order of its replies.
    pub parts: Vec<Vec<usize>>,
}
