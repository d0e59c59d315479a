//! What a command parked on read-through loads will reply: the replies of
//! the keys it already had, rendered, and which slots wait for loads
//! (`loading::render` writes it once the loads finished).

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
