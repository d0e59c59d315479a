//! What a cluster client knows of the cluster: which node owns each slot,
//! as learned from `Moved` answers (shared by the blocking and the async
//! [`ClusterClient`](crate::ClusterClient)s).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use citadel_proto::cluster::{key_slot, SLOT_COUNT};

use crate::error::Error;

pub(crate) struct SlotMap {
    /// The seed connected to: where requests of unknown slots go.
    pub home: String,
    /// The owner of each slot as last learned (None: ask `home`).
    owners: RwLock<Vec<Option<Arc<str>>>>,
    redirects: AtomicU64,
}

impl SlotMap {
    pub fn new(home: String) -> SlotMap {
        SlotMap {
            home,
            owners: RwLock::new(vec![None; usize::from(SLOT_COUNT)]),
            redirects: AtomicU64::new(0),
        }
    }

    /// `Moved` answers followed so far.
    pub fn redirects(&self) -> u64 {
        self.redirects.load(Ordering::Relaxed)
    }

    /// Where a request on `key` goes now.
    pub fn owner_of(&self, key: Option<&[u8]>) -> Arc<str> {
        let owners = self.owners.read().unwrap_or_else(|e| e.into_inner());
        key.and_then(|k| owners[usize::from(key_slot(k))].clone())
            .unwrap_or_else(|| self.home.as_str().into())
    }

    /// The owner a first attempt's answer names, remembered for its slot:
    /// the address to send the request to once more (None: the answer
    /// stands).
    pub fn redirect(&self, answer: &Error) -> Option<String> {
        let Error::Moved { slot, addr } = answer else {
            return None;
        };
        if addr.is_empty() {
            return None;
        }
        let mut owners = self.owners.write().unwrap_or_else(|e| e.into_inner());
        if let Some(owner) = owners.get_mut(usize::from(*slot)) {
            *owner = Some(addr.as_str().into());
        }
        self.redirects.fetch_add(1, Ordering::Relaxed);
        Some(addr.clone())
    }
}
