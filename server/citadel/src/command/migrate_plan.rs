//! What a MIGRATE waiting for its target remembers (`Pending::Migrate`):
//! each key sent and its bucket's version then, so that `migrate::finish` deletes
//! only keys still unchanged. Below `context`, with no dependencies on
//! the handlers.

use citadel_cache::Watch;

pub struct MigratePlan {
    pub keys: Vec<SentKey>,
    /// COPY: nothing is deleted.
    pub copy: bool,
}

/// A key whose RESTORE was sent, as it was dumped.
pub struct SentKey {
    pub key: Box<[u8]>,
    /// Its bucket's version from before the dump.
    pub watch: Watch,
}
