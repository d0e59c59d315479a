//! `--ops`: a weighted operation mix by name, e.g. `lpush,rpush:3` or `get:10,set:1`, and
//! the weighted draw from it.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

use crate::protocol::OpKind;

/// Operations and their weights, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpMix(Vec<(OpKind, u32)>);

impl OpMix {
    pub fn ops(&self) -> impl Iterator<Item = OpKind> + '_ {
        self.0.iter().map(|&(op, _)| op)
    }

    /// Some operation works on a collection (RESP only).
    pub fn has_collections(&self) -> bool {
        self.ops().any(|op| op.collection().is_some())
    }
}

impl FromStr for OpMix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut ops: Vec<(OpKind, u32)> = Vec::new();
        let mut total = 0u32;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = match part.split_once(':') {
                Some((name, w)) => (
                    name,
                    w.trim()
                        .parse::<u32>()
                        .map_err(|e| format!("weight of {name:?} in --ops: {e}"))?,
                ),
                None => (part, 1),
            };
            let op: OpKind = name.parse()?;
            if op == OpKind::Mget {
                return Err("mget is not an --ops operation: use --mget N (with --ratio)".into());
            }
            if weight == 0 {
                return Err(format!("{op} has weight 0 in --ops: leave it out"));
            }
            if ops.iter().any(|&(o, _)| o == op) {
                return Err(format!("{op} appears twice in --ops"));
            }
            total = total
                .checked_add(weight)
                .ok_or("--ops weights add up to more than 2^32")?;
            ops.push((op, weight));
        }
        if ops.is_empty() {
            return Err("--ops names no operation".into());
        }
        Ok(OpMix(ops))
    }
}

impl fmt::Display for OpMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (op, w)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(f, "{sep}{op}:{w}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for OpMix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Draws operations with the mix's weights.
#[derive(Debug, Clone)]
pub struct OpDraw {
    /// Each operation with the running total of the weights up to and including it.
    ends: Vec<(u32, OpKind)>,
}

impl OpDraw {
    pub fn new(mix: &OpMix) -> OpDraw {
        let mut total = 0;
        let ends = (mix.0.iter())
            .map(|&(op, w)| {
                total += w;
                (total, op)
            })
            .collect();
        OpDraw { ends }
    }

    #[inline]
    pub fn next<R: Rng + ?Sized>(&self, rng: &mut R) -> OpKind {
        match self.ends[..] {
            [(_, only)] => only,
            _ => {
                let total = self.ends.last().map_or(1, |&(t, _)| t);
                let r = rng.gen_range(0..total);
                let at = self.ends.partition_point(|&(end, _)| end <= r);
                self.ends[at].1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    #[test]
    fn parses_names_and_weights() {
        let mix: OpMix = "lpush, rpush:3,LRANGE_100".parse().unwrap();
        assert_eq!(
            mix,
            OpMix(vec![
                (OpKind::Lpush, 1),
                (OpKind::Rpush, 3),
                (OpKind::Lrange100, 1)
            ])
        );
        assert_eq!(mix.to_string(), "lpush:1,rpush:3,lrange_100:1");
        assert!(mix.has_collections());
        assert!(!"get:10,set:1".parse::<OpMix>().unwrap().has_collections());
        for bad in ["", "lpush:0", "lpush,lpush", "mget", "lpush:x", "blpop"] {
            assert!(bad.parse::<OpMix>().is_err(), "{bad:?}");
        }
        assert!("lpush:4294967295,rpush".parse::<OpMix>().is_err());
    }

    #[test]
    fn draws_by_weight() {
        let draw = OpDraw::new(&"sadd:1,spop:3".parse().unwrap());
        let mut rng = SmallRng::seed_from_u64(7);
        let n = 40_000;
        let spops = (0..n)
            .filter(|_| draw.next(&mut rng) == OpKind::Spop)
            .count();
        assert!((29_000..31_000).contains(&spops), "{spops} of {n}");
        let one = OpDraw::new(&"zadd".parse().unwrap());
        assert!((0..10).all(|_| one.next(&mut rng) == OpKind::Zadd));
    }
}
