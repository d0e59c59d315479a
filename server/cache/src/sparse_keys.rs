//! What RANDOMKEY's last whole walk found of a sparse namespace, kept per
//! handle (random_key.rs uses it; a module of its own, below the handle
//! that holds it).

/// The keys of namespace `ns` a whole walk found (user keys).
#[derive(Default)]
pub(crate) struct SparseKeys {
    pub ns: u8,
    pub keys: Vec<Vec<u8>>,
    /// Whether `keys` were all the namespace held when walked.
    pub complete: bool,
}
