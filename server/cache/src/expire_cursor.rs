//! Where the active expiry scan (expire_scan.rs) stands, one per writer:
//! a module of its own, apart from the scan (which works on the writer),
//! so the writer can hold it without the two importing each other.

/// Where the scan stands.
#[derive(Default)]
pub(crate) struct ExpireCursor {
    pub(crate) at: ScanPos,
    /// The key of the item being expired, copied out of the mapping.
    pub(crate) key: Vec<u8>,
}

impl ExpireCursor {
    pub(crate) fn new(seed: u64) -> ExpireCursor {
        ExpireCursor {
            at: ScanPos::entering(seed as u32),
            key: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Default)]
pub(crate) struct ScanPos {
    pub(crate) seg: u32,
    /// Offset of the next item to read in `seg` (0: not entered yet).
    pub(crate) off: usize,
    /// `seg`'s creation time and `min_expire` when the walk entered it: a
    /// segment reused meanwhile is walked again from its start, and the
    /// raise of its `min_expire` is skipped.
    pub(crate) created: u64,
    pub(crate) hint: u64,
    /// Earliest expiry of the unexpired items met in `seg` so far.
    pub(crate) ahead: u64,
}

impl ScanPos {
    pub(crate) fn entering(seg: u32) -> ScanPos {
        ScanPos {
            seg,
            ahead: u64::MAX,
            ..ScanPos::default()
        }
    }
}
