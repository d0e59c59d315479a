//! What a client-side caching invalidation says (`crate::tracking` makes
//! them; the mail and the completion carry them to the connection).

use std::sync::Arc;

/// What one invalidation says.
#[derive(Debug, Clone)]
pub enum Invalidated {
    /// These keys, as a RESP array (the same bytes in RESP2 and RESP3):
    /// one in default mode, a loop turn's worth under one prefix in BCAST.
    Keys(Arc<[u8]>),
    /// Every key (FLUSHALL, FLUSHDB).
    All,
    /// To the tracking client itself: the client it redirects to (id) is
    /// gone.
    RedirectBroken(u64),
}

impl Invalidated {
    pub fn keys(keys: &[&[u8]]) -> Invalidated {
        let mut out = Vec::new();
        let mut reply = citadel_resp::Reply::new(&mut out, false);
        reply.array(keys.len());
        for key in keys {
            reply.bulk(key);
        }
        Invalidated::Keys(out.into())
    }
}
