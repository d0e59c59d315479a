//! A batch against a cluster: its operations grouped by their slots'
//! owners, one sub-batch per node, the answers merged back in order. An
//! operation answered `Moved` (its slot moved since it was learned) is
//! sent once more, with the others redirected to the same node; a second
//! `Moved` is its answer. A transport failure fails the whole batch (the
//! groups already answered may have run, as with a single node's batch).

use std::collections::BTreeMap;

use super::slots::SlotMap;
use crate::command::Command;
use crate::error::{ProtocolError, Result};
use crate::outcome::Outcome;

/// Sub-batches still to send: (node, operation indices, whether a
/// `Moved` answer is followed).
type Groups = Vec<(String, Vec<usize>, bool)>;

pub(crate) struct BatchRoute {
    results: Vec<Option<Result<Outcome>>>,
    pending: Groups,
    redirected: BTreeMap<String, Vec<usize>>,
}

impl BatchRoute {
    /// Groups `ops` by the owner each one's first key has now.
    pub fn new(slots: &SlotMap, ops: &[Command<'_>]) -> BatchRoute {
        let mut by_owner: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            let owner = slots.owner_of(op.first_key());
            by_owner.entry(owner.to_string()).or_default().push(i);
        }
        BatchRoute {
            results: (0..ops.len()).map(|_| None).collect(),
            pending: by_owner.into_iter().map(|(a, i)| (a, i, true)).collect(),
            redirected: BTreeMap::new(),
        }
    }

    /// The next sub-batch: its node, its operations' indices, whether a
    /// `Moved` answer is followed, and the operations themselves.
    pub fn next<'a>(
        &mut self,
        ops: &[Command<'a>],
    ) -> Option<(String, Vec<usize>, bool, Vec<Command<'a>>)> {
        if self.pending.is_empty() {
            let redirected = std::mem::take(&mut self.redirected);
            self.pending = redirected.into_iter().map(|(a, i)| (a, i, false)).collect();
        }
        let (addr, indices, follow) = self.pending.pop()?;
        let sub = indices.iter().map(|&i| ops[i].clone()).collect();
        Some((addr, indices, follow, sub))
    }

    /// Files a sub-batch's answer (a failed request fails the batch).
    pub fn answered(
        &mut self,
        slots: &SlotMap,
        indices: Vec<usize>,
        follow: bool,
        answer: Result<Outcome>,
    ) -> Result<()> {
        let outcomes = answer?.into_batch()?;
        if outcomes.len() != indices.len() {
            return Err(ProtocolError::BatchLength {
                sent: indices.len(),
                got: outcomes.len(),
            }
            .into());
        }
        for (i, outcome) in indices.into_iter().zip(outcomes) {
            let moved_to = match (&outcome, follow) {
                (Err(e), true) => slots.redirect(e),
                _ => None,
            };
            match moved_to {
                Some(owner) => self.redirected.entry(owner).or_default().push(i),
                None => self.results[i] = Some(outcome),
            }
        }
        Ok(())
    }

    /// The merged answer, in the operations' order.
    pub fn finish(self) -> Outcome {
        Outcome::Batch(
            self.results
                .into_iter()
                .map(|r| r.expect("every operation answered or failed the batch"))
                .collect(),
        )
    }
}
