//! Side-by-side comparison harness (filled in below).
use crate::cli::CompareArgs;
use crate::error::LoadgenError;

pub fn run(_args: &CompareArgs) -> Result<(), LoadgenError> {
    Ok(())
}
