//! What to send next: operation mix, key choice and value sizes, deterministic per seed.

pub mod keys;
pub mod mix;
pub mod values;
pub mod zipf;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::cli::{Ratio, WorkloadArgs};
use crate::protocol::OpKind;
use keys::KeyChooser;
use mix::OpDraw;

/// One request's choice: the operation, the key index (of the `--keys` space, or for a
/// collection operation of the `--collection-keys` space) and the element number (SADD,
/// HSET, ZADD; else 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub op: OpKind,
    pub key: u64,
    pub element: u64,
}

/// Per-connection request stream.
#[derive(Debug)]
pub struct Generator {
    rng: SmallRng,
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    /// The configured SET:GET mix over the configured key distribution
    /// (each GET an MGET of the key's group with `--mget`).
    Mix {
        ratio: Ratio,
        keys: KeyChooser,
        read: OpKind,
    },
    /// `--ops`: operations drawn by weight; plain keys from `keys`, collection keys from
    /// `collections`, elements uniform in `0..elements`.
    Ops {
        draw: OpDraw,
        keys: KeyChooser,
        collections: KeyChooser,
        elements: u64,
    },
    /// SET each key of `next..end` once, then stop.
    Prefill { next: u64, end: u64 },
}

impl Generator {
    /// The measured workload for connection number `conn` (global over all threads).
    pub fn mix(args: &WorkloadArgs, conn: u64, total_conns: u64) -> Generator {
        // Where a sequential walk of a space of `n` starts.
        let start = |n: u64| n.max(1) / total_conns.max(1) * conn;
        let rng = SmallRng::seed_from_u64(stream_seed(args.seed, conn));
        if let Some(mix) = &args.ops {
            return Generator {
                rng,
                mode: Mode::Ops {
                    draw: OpDraw::new(mix),
                    keys: KeyChooser::new(args.key_dist, args.keys, start(args.keys)),
                    collections: KeyChooser::new(
                        args.key_dist,
                        args.collection_keys,
                        start(args.collection_keys),
                    ),
                    elements: args.elements.max(1),
                },
            };
        }
        Generator {
            rng,
            mode: Mode::Mix {
                ratio: args.ratio,
                keys: KeyChooser::new(args.key_dist, args.keys, start(args.keys)),
                read: if args.mget.is_some() {
                    OpKind::Mget
                } else {
                    OpKind::Get
                },
            },
        }
    }

    /// Prefill of keys `start..end`.
    pub fn prefill(seed: u64, conn: u64, start: u64, end: u64) -> Generator {
        Generator {
            rng: SmallRng::seed_from_u64(stream_seed(seed ^ 0x5EED_F111, conn)),
            mode: Mode::Prefill { next: start, end },
        }
    }

    /// The next request, or `None` when a prefill range is done.
    #[inline]
    pub fn next_pick(&mut self) -> Option<Pick> {
        match &mut self.mode {
            Mode::Mix { ratio, keys, read } => {
                let op = if ratio.get == 0
                    || (ratio.set != 0 && self.rng.gen_range(0..ratio.set + ratio.get) < ratio.set)
                {
                    OpKind::Set
                } else {
                    *read
                };
                Some(Pick {
                    op,
                    key: keys.next(&mut self.rng),
                    element: 0,
                })
            }
            Mode::Ops {
                draw,
                keys,
                collections,
                elements,
            } => {
                let op = draw.next(&mut self.rng);
                let key = match op.collection() {
                    Some(_) => collections.next(&mut self.rng),
                    None => keys.next(&mut self.rng),
                };
                let element = if op.carries_element() && *elements > 1 {
                    self.rng.gen_range(0..*elements)
                } else {
                    0
                };
                Some(Pick { op, key, element })
            }
            Mode::Prefill { next, end } => {
                if next >= end {
                    return None;
                }
                let key = *next;
                *next += 1;
                Some(Pick {
                    op: OpKind::Set,
                    key,
                    element: 0,
                })
            }
        }
    }

    /// The stream's random generator (value sizes and offsets draw from it too).
    #[inline]
    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }
}

/// Independent, well-mixed seed for stream `n` (splitmix64 finaliser).
pub fn stream_seed(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
