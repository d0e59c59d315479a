//! The operations the load generator issues: GET/SET/MGET and the collection commands of
//! redis-benchmark's tests (`-t lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,
//! lrange_100,lrange_600`) and BITCOUNT, with what each one needs (a value, an element, a collection
//! key) and how its replies count (hits and misses, or just done).

use std::fmt;
use std::str::FromStr;

/// Operations the load generator issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    Get,
    Set,
    /// MGET of several keys (`--mget N`, RESP only).
    Mget,
    /// `LPUSH mylist VALUE`; the collection operations below are RESP only.
    Lpush,
    /// `RPUSH mylist VALUE`.
    Rpush,
    /// `LPOP mylist`.
    Lpop,
    /// `RPOP mylist`.
    Rpop,
    /// `SADD myset element:N`.
    Sadd,
    /// `HSET myhash element:N VALUE`.
    Hset,
    /// `SPOP myset`.
    Spop,
    /// `ZADD myzset N element:N`.
    Zadd,
    /// `ZPOPMIN myzset`.
    Zpopmin,
    /// `LRANGE mylist 0 99`.
    Lrange100,
    /// `LRANGE mylist 0 599`.
    Lrange600,
    /// `BITCOUNT key` over the key space (RESP only): a read whose server
    /// work grows with the value (`--value-size`, after `--prefill`) while
    /// its request and reply stay a few bytes, so one client core can offer
    /// a server core several times what it can do.
    Bitcount,
}

/// The type of the key a collection operation works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    List,
    Set,
    Hash,
    Zset,
}

impl Collection {
    /// redis-benchmark's key name for this type (`--collection-keys 1`).
    pub fn key_name(self) -> &'static [u8] {
        match self {
            Collection::List => b"mylist",
            Collection::Set => b"myset",
            Collection::Hash => b"myhash",
            Collection::Zset => b"myzset",
        }
    }
}

impl OpKind {
    pub const ALL: [OpKind; 15] = [
        OpKind::Get,
        OpKind::Set,
        OpKind::Mget,
        OpKind::Lpush,
        OpKind::Rpush,
        OpKind::Lpop,
        OpKind::Rpop,
        OpKind::Sadd,
        OpKind::Hset,
        OpKind::Spop,
        OpKind::Zadd,
        OpKind::Zpopmin,
        OpKind::Lrange100,
        OpKind::Lrange600,
        OpKind::Bitcount,
    ];

    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name in reports, JSON and `--ops` (redis-benchmark's test name).
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Set => "set",
            OpKind::Mget => "mget",
            OpKind::Lpush => "lpush",
            OpKind::Rpush => "rpush",
            OpKind::Lpop => "lpop",
            OpKind::Rpop => "rpop",
            OpKind::Sadd => "sadd",
            OpKind::Hset => "hset",
            OpKind::Spop => "spop",
            OpKind::Zadd => "zadd",
            OpKind::Zpopmin => "zpopmin",
            OpKind::Lrange100 => "lrange_100",
            OpKind::Lrange600 => "lrange_600",
            OpKind::Bitcount => "bitcount",
        }
    }

    /// The collection type a collection operation's key holds; `None` for GET/SET/MGET.
    #[inline]
    pub fn collection(self) -> Option<Collection> {
        match self {
            OpKind::Get | OpKind::Set | OpKind::Mget | OpKind::Bitcount => None,
            OpKind::Lpush
            | OpKind::Rpush
            | OpKind::Lpop
            | OpKind::Rpop
            | OpKind::Lrange100
            | OpKind::Lrange600 => Some(Collection::List),
            OpKind::Sadd | OpKind::Spop => Some(Collection::Set),
            OpKind::Hset => Some(Collection::Hash),
            OpKind::Zadd | OpKind::Zpopmin => Some(Collection::Zset),
        }
    }

    /// Only the RESP protocol has it (memcache and RPC have GET and SET).
    pub fn resp_only(self) -> bool {
        self.collection().is_some() || self == OpKind::Bitcount
    }

    /// Sends a value from the value pool (`--value-size`).
    #[inline]
    pub fn carries_value(self) -> bool {
        matches!(
            self,
            OpKind::Set | OpKind::Lpush | OpKind::Rpush | OpKind::Hset
        )
    }

    /// Names an element `element:N` (N drawn from `--elements`).
    #[inline]
    pub fn carries_element(self) -> bool {
        matches!(self, OpKind::Sadd | OpKind::Hset | OpKind::Zadd)
    }

    /// Its replies count hits and misses: a read or a pop (found or not), or a range
    /// (elements returned, and missing from a full range).
    pub fn counts_hits(self) -> bool {
        matches!(
            self,
            OpKind::Get
                | OpKind::Mget
                | OpKind::Lpop
                | OpKind::Rpop
                | OpKind::Spop
                | OpKind::Zpopmin
                | OpKind::Lrange100
                | OpKind::Lrange600
        )
    }

    /// LRANGE's element count: `LRANGE key 0 (N-1)`.
    pub fn range_len(self) -> Option<u32> {
        match self {
            OpKind::Lrange100 => Some(100),
            OpKind::Lrange600 => Some(600),
            _ => None,
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OpKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        OpKind::ALL
            .into_iter()
            .find(|op| op.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = OpKind::ALL.iter().map(|op| op.name()).collect();
                format!("unknown operation {s:?} (one of {})", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_all_and_names_parse_back() {
        for (i, op) in OpKind::ALL.into_iter().enumerate() {
            assert_eq!(op.index(), i);
            assert_eq!(op.name().parse::<OpKind>().unwrap(), op);
        }
        assert_eq!("LRANGE_600".parse::<OpKind>().unwrap(), OpKind::Lrange600);
        assert!("lrange".parse::<OpKind>().is_err());
    }
}
