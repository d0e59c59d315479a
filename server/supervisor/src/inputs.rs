//! A pipeline stage's input rings as the supervisor sees them. A later
//! stage's are written by the stage before, which picks the next instance
//! of a call itself, so the server's per-instance claim
//! (`InstanceStatus::try_enter`) does not reach it; the rings' gate
//! (`citadel_proto::ring`, `gate.rs`) does: an instance slot's inputs are
//! open while it takes calls and closed otherwise (a spare, one warming
//! up, one draining). A draining stage instance, the first one too, stops
//! only once its inputs are drained (no call open in them, every record
//! committed): a pipeline call does not stay counted in flight on the
//! first stage's instance (the pipeline counts it), so "nothing in
//! flight" does not say its rings are empty. A plugin that is no stage
//! has none here: its calls in flight say it all.

use citadel_proto::Ring;

#[derive(Debug, Clone, Default)]
pub struct StageInputs(Vec<Ring>);

impl StageInputs {
    /// `rings` are the slot's request rings; kept only for a pipeline
    /// stage (the server ignores a first stage's gate: its claim rules).
    pub fn new(rings: Vec<Ring>, stage: bool) -> StageInputs {
        StageInputs(if stage { rings } else { Vec::new() })
    }

    /// The stage before opens new calls in them from now on.
    pub fn open(&self) {
        self.0.iter().for_each(Ring::open);
    }

    /// It opens none from now on (calls open in them finish there).
    pub fn close(&self) {
        self.0.iter().for_each(Ring::close);
    }

    /// After `close` (and, for a first stage, the instance's deactivation):
    /// nothing will reach them any more and everything that did is served
    /// (true when this is no stage).
    pub fn drained(&self) -> bool {
        self.0.iter().all(Ring::is_drained)
    }
}
