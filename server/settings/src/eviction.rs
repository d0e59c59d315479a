//! `maxmemory-policy`: Redis's eight names, and what each asks of the
//! cache (`citadel_cache::EvictionPolicy` is the engine's four-way view).

use crate::value::SettingValue;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MaxmemoryPolicy {
    AllkeysLfu,
    AllkeysLru,
    AllkeysRandom,
    VolatileLfu,
    VolatileLru,
    VolatileRandom,
    VolatileTtl,
    NoEviction,
}

const NAMES: &[(&str, MaxmemoryPolicy)] = &[
    ("allkeys-lfu", MaxmemoryPolicy::AllkeysLfu),
    ("allkeys-lru", MaxmemoryPolicy::AllkeysLru),
    ("allkeys-random", MaxmemoryPolicy::AllkeysRandom),
    ("volatile-lfu", MaxmemoryPolicy::VolatileLfu),
    ("volatile-lru", MaxmemoryPolicy::VolatileLru),
    ("volatile-random", MaxmemoryPolicy::VolatileRandom),
    ("volatile-ttl", MaxmemoryPolicy::VolatileTtl),
    ("noeviction", MaxmemoryPolicy::NoEviction),
];

impl MaxmemoryPolicy {
    /// Redis's name for it.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("allkeys-lfu", |(n, _)| n)
    }

    /// An LFU policy: OBJECT FREQ answers, OBJECT IDLETIME is refused
    /// (Redis's MAXMEMORY_FLAG_LFU); every other policy the reverse.
    pub fn is_lfu(self) -> bool {
        matches!(
            self,
            MaxmemoryPolicy::AllkeysLfu | MaxmemoryPolicy::VolatileLfu
        )
    }

    /// Only keys with a TTL may be evicted.
    pub fn is_volatile(self) -> bool {
        matches!(
            self,
            MaxmemoryPolicy::VolatileLfu
                | MaxmemoryPolicy::VolatileLru
                | MaxmemoryPolicy::VolatileRandom
                | MaxmemoryPolicy::VolatileTtl
        )
    }
}

impl SettingValue for MaxmemoryPolicy {
    fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim().to_ascii_lowercase();
        NAMES
            .iter()
            .find(|(n, _)| *n == t)
            .map(|(_, p)| *p)
            .ok_or_else(|| {
                "expected allkeys-lfu, allkeys-lru, allkeys-random, volatile-lfu, \
                 volatile-lru, volatile-random, volatile-ttl or noeviction"
                    .into()
            })
    }
    fn render(&self) -> String {
        self.name().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for (name, policy) in NAMES {
            assert_eq!(MaxmemoryPolicy::parse(name), Ok(*policy));
            assert_eq!(policy.render(), *name);
        }
        assert_eq!(
            MaxmemoryPolicy::parse("NoEviction"),
            Ok(MaxmemoryPolicy::NoEviction)
        );
        assert!(MaxmemoryPolicy::parse("allkeys").is_err());
        assert!(
            MaxmemoryPolicy::VolatileLfu.is_lfu() && MaxmemoryPolicy::VolatileLfu.is_volatile()
        );
        assert!(
            !MaxmemoryPolicy::AllkeysLru.is_lfu() && !MaxmemoryPolicy::NoEviction.is_volatile()
        );
    }
}
