//! resp (in progress)
