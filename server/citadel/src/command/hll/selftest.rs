//! PFSELFTEST: Redis's self-test of its HLL code, run on this build's:
//! dense registers read back what was stored in them, and a sparse and a
//! dense sketch fed the same elements agree and stay within six standard
//! errors of the true count at every power of ten, to 1,000,000 elements
//! (Redis goes to 10,000,000; this holds the core about a tenth of it).

use super::estimate::{cardinality, REGISTERS};
use super::sketch::{dense_registers_hold, histogram, is_dense, Corrupt, Sketch};
use crate::command::collections::linear::next_random;

/// Why the self-test failed: Redis's TESTFAILED errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfTestFailure {
    Register(usize),
    SparseNotUsed,
    Disagree,
    TooBigError { card: u64, abserr: u64 },
    Corrupt,
}

impl SelfTestFailure {
    pub fn text(&self) -> String {
        match self {
            SelfTestFailure::Register(i) => format!("TESTFAILED Register error at {i}"),
            SelfTestFailure::SparseNotUsed => "TESTFAILED sparse encoding not used".into(),
            SelfTestFailure::Disagree => "TESTFAILED dense/sparse disagree".into(),
            SelfTestFailure::TooBigError { card, abserr } => {
                format!("TESTFAILED Too big error. card:{card} abserr:{abserr}")
            }
            SelfTestFailure::Corrupt => "TESTFAILED corrupt sketch".into(),
        }
    }
}

impl From<Corrupt> for SelfTestFailure {
    fn from(_: Corrupt) -> Self {
        SelfTestFailure::Corrupt
    }
}

const REGISTER_CYCLES: usize = 100;
const ELEMENTS: u64 = 1_000_000;

pub fn run() -> Result<(), SelfTestFailure> {
    let mut values = [0u8; REGISTERS];
    for _ in 0..REGISTER_CYCLES {
        values
            .iter_mut()
            .for_each(|v| *v = (next_random() & 0x3f) as u8);
        if let Some(i) = dense_registers_hold(&values) {
            return Err(SelfTestFailure::Register(i));
        }
    }
    let mut sparse = Sketch::empty();
    let mut dense = Sketch::empty();
    dense.make_dense()?;
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let seed = next_random();
    let mut checkpoint = 1;
    for j in 1..=ELEMENTS {
        let element = (j ^ seed).to_le_bytes();
        sparse.add(&element)?;
        dense.add(&element)?;
        if j != checkpoint {
            continue;
        }
        // Below half of hll-sparse-max-bytes, a sketch of that many
        // elements must still be sparse (as Redis's test, on the setting).
        let sparse_max = crate::collection_limits::hll_sparse_max_bytes() as u64;
        if j < sparse_max / 2 && is_dense(&sparse.bytes) {
            return Err(SelfTestFailure::SparseNotUsed);
        }
        let count = cardinality(&histogram(&dense.bytes)?);
        if count != cardinality(&histogram(&sparse.bytes)?) {
            return Err(SelfTestFailure::Disagree);
        }
        // Cardinality 10 collides often enough to allow one off only.
        let maxerr = if j == 10 {
            1
        } else {
            (relerr * 6.0 * checkpoint as f64).ceil() as u64
        };
        let abserr = checkpoint.abs_diff(count);
        if abserr > maxerr {
            return Err(SelfTestFailure::TooBigError {
                card: checkpoint,
                abserr,
            });
        }
        checkpoint *= 10;
    }
    Ok(())
}
