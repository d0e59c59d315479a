//! BCAST mode: the prefix table (prefix -> the clients that broadcast it)
//! and each thread's batch of the keys changed under a prefix in one loop
//! turn. Redis collects a turn's changed keys per prefix and, before it
//! sleeps, sends each client of the prefix one message listing them all
//! (in byte order, each once); a client in NOLOOP mode gets the list
//! without the keys it changed last. A thread here does the same at the
//! end of its turn (`Tracking::broadcast`), so the keys of one MULTI/EXEC,
//! one script or one pipelined batch arrive in one message per prefix.

use std::collections::BTreeMap;
use std::ops::Bound;

/// Prefix -> the BCAST clients that registered it ("" matches every key).
#[derive(Default)]
pub(super) struct PrefixTable {
    prefixes: BTreeMap<Box<[u8]>, Vec<u64>>,
}

impl PrefixTable {
    pub(super) fn add(&mut self, prefix: &[u8], client: u64) {
        let clients = self.prefixes.entry(prefix.into()).or_default();
        if !clients.contains(&client) {
            clients.push(client);
        }
    }

    /// Removes `client` from `prefixes`; a prefix left without clients goes.
    pub(super) fn remove(&mut self, prefixes: &[Box<[u8]>], client: u64) {
        for prefix in prefixes {
            if let Some(clients) = self.prefixes.get_mut(prefix) {
                clients.retain(|&c| c != client);
                if clients.is_empty() {
                    self.prefixes.remove(prefix);
                }
            }
        }
    }

    pub(super) fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// Whether a change of `key` concerns any BCAST client.
    pub(super) fn matches(&self, key: &[u8]) -> bool {
        self.prefixes.keys().any(|p| key.starts_with(p))
    }

    /// Each prefix, in byte order (Redis's order of the messages), with
    /// its clients.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u64])> {
        self.prefixes.iter().map(|(p, c)| (&p[..], &c[..]))
    }
}

/// The keys this thread changed under some BCAST prefix since its last
/// broadcast, each with the client whose command changed it last (None:
/// expiry, eviction, a loader), as NOLOOP needs.
#[derive(Default)]
pub struct BcastBatch {
    keys: BTreeMap<Box<[u8]>, Option<u64>>,
}

impl BcastBatch {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(super) fn note(&mut self, key: &[u8], origin: Option<u64>) {
        match self.keys.get_mut(key) {
            Some(last) => *last = origin,
            None => {
                self.keys.insert(key.into(), origin);
            }
        }
    }

    /// The keys under `prefix`, in byte order, with who changed each.
    pub(super) fn under<'a>(
        &'a self,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = (&'a [u8], Option<u64>)> + 'a {
        self.keys
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, o)| (&k[..], *o))
    }

    pub(super) fn clear(&mut self) {
        self.keys.clear();
    }
}

/// Two prefixes of one client that overlap (one starts the other).
#[derive(Debug, PartialEq, Eq)]
pub struct Overlap {
    pub prefix: String,
    pub other: String,
    /// `other` is one the client has (else: given in the same command).
    pub existing: bool,
}

/// Redis's rule for one client's prefixes: none may be a prefix of
/// another, neither among the new ones nor against those it has.
pub fn collision(existing: &[Box<[u8]>], new: &[Box<[u8]>]) -> Option<Overlap> {
    let overlap = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    let text = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    for (i, p) in new.iter().enumerate() {
        let found = match existing.iter().find(|old| overlap(p, old)) {
            Some(old) => Some((old, true)),
            None => new[i + 1..]
                .iter()
                .find(|o| overlap(p, o))
                .map(|o| (o, false)),
        };
        if let Some((other, existing)) = found {
            return Some(Overlap {
                prefix: text(p),
                other: text(other),
                existing,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_lists_the_keys_under_a_prefix_in_byte_order_once_each() {
        let mut batch = BcastBatch::default();
        for (key, origin) in [(b"b:2", 1), (b"a:1", 2), (b"b:1", 3), (b"b:2", 4)] {
            batch.note(key, Some(origin));
        }
        batch.note(b"c", None);
        let under: Vec<_> = batch.under(b"b:").collect();
        assert_eq!(under, vec![(&b"b:1"[..], Some(3)), (&b"b:2"[..], Some(4))]);
        assert_eq!(batch.under(b"").count(), 4);
        assert_eq!(batch.under(b"d").count(), 0);
    }

    #[test]
    fn overlapping_prefixes_are_refused_as_redis_words_it() {
        let b = |s: &str| -> Box<[u8]> { s.as_bytes().into() };
        let overlap = |prefix: &str, other: &str, existing| Overlap {
            prefix: prefix.into(),
            other: other.into(),
            existing,
        };
        let e = collision(&[], &[b("FOOBAR"), b("FOO")]);
        assert_eq!(e, Some(overlap("FOOBAR", "FOO", false)));
        let e = collision(&[b("FOO"), b("BAR")], &[b("BARB")]);
        assert_eq!(e, Some(overlap("BARB", "BAR", true)));
        assert_eq!(collision(&[b("FOO")], &[b("BAR")]), None);
        // No PREFIX is the prefix "", which every other overlaps.
        assert!(collision(&[b("")], &[b("a")]).is_some());
    }
}
