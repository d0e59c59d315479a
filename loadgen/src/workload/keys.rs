//! Key choice (uniform, zipf, sequential) and key formatting into a reused buffer.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

use super::zipf::Zipf;
use crate::protocol::OpKind;

/// How keys are drawn from `0..keys`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyDist {
    Uniform,
    /// Zipf with this exponent; key 0 is the hottest.
    Zipf(f64),
    /// Each connection walks the key space in order, starting at its own offset.
    Sequential,
}

impl FromStr for KeyDist {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "uniform" => Ok(KeyDist::Uniform),
            "sequential" => Ok(KeyDist::Sequential),
            _ => {
                let exp = s.strip_prefix("zipf:").ok_or_else(|| {
                    format!("key distribution {s:?}: use uniform, zipf:S or sequential")
                })?;
                let exp: f64 = exp
                    .parse()
                    .map_err(|e| format!("zipf exponent {exp:?}: {e}"))?;
                if !(exp > 0.0 && exp.is_finite()) {
                    return Err(format!("zipf exponent {exp} must be > 0"));
                }
                Ok(KeyDist::Zipf(exp))
            }
        }
    }
}

impl fmt::Display for KeyDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDist::Uniform => f.write_str("uniform"),
            KeyDist::Zipf(s) => write!(f, "zipf:{s}"),
            KeyDist::Sequential => f.write_str("sequential"),
        }
    }
}

impl serde::Serialize for KeyDist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Draws key indices for one connection.
#[derive(Debug, Clone)]
pub struct KeyChooser {
    keys: u64,
    kind: Chooser,
}

#[derive(Debug, Clone)]
enum Chooser {
    Uniform,
    Zipf(Zipf),
    Sequential { next: u64 },
}

impl KeyChooser {
    /// `start` is where a sequential walk begins (ignored by the random distributions).
    pub fn new(dist: KeyDist, keys: u64, start: u64) -> KeyChooser {
        let keys = keys.max(1);
        let kind = match dist {
            KeyDist::Uniform => Chooser::Uniform,
            KeyDist::Zipf(s) => Chooser::Zipf(Zipf::new(keys, s)),
            KeyDist::Sequential => Chooser::Sequential { next: start % keys },
        };
        KeyChooser { keys, kind }
    }

    #[inline]
    pub fn next<R: Rng + ?Sized>(&mut self, rng: &mut R) -> u64 {
        match &mut self.kind {
            Chooser::Uniform => rng.gen_range(0..self.keys),
            Chooser::Zipf(z) => z.sample(rng),
            Chooser::Sequential { next } => {
                let k = *next;
                *next = if k + 1 == self.keys { 0 } else { k + 1 };
                k
            }
        }
    }
}

/// How key indices become key names: `PREFIX<index>`, or with `--mget N`
/// `PREFIX{<group>}:<index>` (group = index / N), so that the N keys one
/// MGET reads share a hash tag, hence a cluster slot; SETs and the prefill
/// use the same names. Collection operations name their type's key instead: `mylist`
/// (redis-benchmark's), or with `--collection-keys N` `mylist:<index>`.
#[derive(Debug, Clone)]
pub struct KeyNames {
    prefix: Vec<u8>,
    /// `--mget N`: keys per group.
    group: Option<u64>,
    /// The key space size (the last group may be short).
    keys: u64,
    /// `--collection-keys` above 1: collection keys carry their index.
    numbered_collections: bool,
}

impl KeyNames {
    pub fn new(prefix: &str, mget: Option<usize>, keys: u64) -> KeyNames {
        KeyNames {
            prefix: prefix.as_bytes().to_vec(),
            group: mget.map(|n| n.max(1) as u64),
            keys,
            numbered_collections: false,
        }
    }

    /// Collection keys are `mylist` (1) or `mylist:0` .. `mylist:<n-1>`.
    pub fn with_collection_keys(mut self, n: u64) -> KeyNames {
        self.numbered_collections = n > 1;
        self
    }

    /// Writes the key(s) of a request for key `index` into `out`: one key,
    /// or for MGET every key of `index`'s group, each one's end in `ends`.
    pub fn format(&self, op: OpKind, index: u64, out: &mut Vec<u8>, ends: &mut Vec<usize>) {
        out.clear();
        ends.clear();
        if let Some(c) = op.collection() {
            out.extend_from_slice(c.key_name());
            if self.numbered_collections {
                out.push(b':');
                out.extend_from_slice(itoa::Buffer::new().format(index).as_bytes());
            }
            return;
        }
        let Some(n) = self.group else {
            format_key(&self.prefix, index, out);
            return;
        };
        let group = index / n;
        let one = |i: u64, out: &mut Vec<u8>| {
            out.extend_from_slice(&self.prefix);
            out.push(b'{');
            out.extend_from_slice(itoa::Buffer::new().format(group).as_bytes());
            out.extend_from_slice(b"}:");
            out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        };
        if op != OpKind::Mget {
            one(index, out);
            return;
        }
        for i in group * n..(group * n + n).min(self.keys) {
            one(i, out);
            ends.push(out.len());
        }
    }
}

/// Writes `prefix` followed by the decimal key index, without allocating once `out` has grown.
#[inline]
pub fn format_key(prefix: &[u8], index: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(prefix);
    out.extend_from_slice(itoa::Buffer::new().format(index).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    #[test]
    fn sequential_wraps() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut c = KeyChooser::new(KeyDist::Sequential, 3, 2);
        let got: Vec<u64> = (0..5).map(|_| c.next(&mut rng)).collect();
        assert_eq!(got, [2, 0, 1, 2, 0]);
    }

    #[test]
    fn formats_keys() {
        let mut out = Vec::new();
        format_key(b"key:", 1234, &mut out);
        assert_eq!(out, b"key:1234");
    }

    #[test]
    fn mget_groups_share_a_hash_tag() {
        let names = KeyNames::new("k:", Some(3), 7);
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        names.format(OpKind::Mget, 4, &mut out, &mut ends);
        assert_eq!(out, b"k:{1}:3k:{1}:4k:{1}:5");
        assert_eq!(ends, [7, 14, 21]);
        names.format(OpKind::Mget, 6, &mut out, &mut ends);
        assert_eq!(
            (&out[..], &ends[..]),
            (&b"k:{2}:6"[..], &[7][..]),
            "short last group"
        );
        names.format(OpKind::Set, 4, &mut out, &mut ends);
        assert_eq!((&out[..], ends.len()), (&b"k:{1}:4"[..], 0));
        KeyNames::new("k:", None, 7).format(OpKind::Get, 4, &mut out, &mut ends);
        assert_eq!(out, b"k:4");
    }

    #[test]
    fn collection_operations_name_their_type_key() {
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        let one = KeyNames::new("k:", None, 7);
        for (op, name) in [
            (OpKind::Lpush, &b"mylist"[..]),
            (OpKind::Lrange600, b"mylist"),
            (OpKind::Spop, b"myset"),
            (OpKind::Hset, b"myhash"),
            (OpKind::Zpopmin, b"myzset"),
        ] {
            one.format(op, 5, &mut out, &mut ends);
            assert_eq!((&out[..], ends.len()), (name, 0), "{op}");
        }
        let many = KeyNames::new("k:", Some(3), 7).with_collection_keys(4);
        many.format(OpKind::Sadd, 3, &mut out, &mut ends);
        assert_eq!((&out[..], ends.len()), (&b"myset:3"[..], 0));
        many.format(OpKind::Get, 3, &mut out, &mut ends);
        assert_eq!(out, b"k:{1}:3", "plain keys keep their names");
    }

    #[test]
    fn parses_dist() {
        assert_eq!("zipf:0.99".parse::<KeyDist>().unwrap(), KeyDist::Zipf(0.99));
        assert!("zipf:0".parse::<KeyDist>().is_err());
        assert!("gauss".parse::<KeyDist>().is_err());
    }
}
