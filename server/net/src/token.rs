//! The 64-bit `user_data` of every submission: what operation it was and,
//! for connection operations, which connection slot and which generation of
//! that slot (so a late completion can never be mistaken for a newer
//! connection that reused the slot).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Accept,
    Recv,
    Send,
    /// An AsyncCancel's own completion (nothing to do).
    Cancel,
    /// A multishot poll on the service's wake fd number `slot`.
    Wake,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub op: Op,
    pub slot: u32,
    /// Only the low 28 bits are kept.
    pub generation: u32,
}

const GEN_MASK: u32 = (1 << 28) - 1;

impl Token {
    pub fn new(op: Op, slot: u32, generation: u32) -> Token {
        Token {
            op,
            slot,
            generation: generation & GEN_MASK,
        }
    }

    pub fn encode(self) -> u64 {
        let op = match self.op {
            Op::Accept => 0u64,
            Op::Recv => 1,
            Op::Send => 2,
            Op::Cancel => 3,
            Op::Wake => 4,
        };
        (op << 60) | (u64::from(self.generation & GEN_MASK) << 32) | u64::from(self.slot)
    }

    pub fn decode(data: u64) -> Token {
        let op = match data >> 60 {
            0 => Op::Accept,
            1 => Op::Recv,
            2 => Op::Send,
            4 => Op::Wake,
            _ => Op::Cancel,
        };
        Token {
            op,
            slot: data as u32,
            generation: (data >> 32) as u32 & GEN_MASK,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for op in [Op::Accept, Op::Recv, Op::Send, Op::Cancel, Op::Wake] {
            let t = Token::new(op, u32::MAX, 0x0fff_ffff);
            assert_eq!(Token::decode(t.encode()), t);
        }
        let t = Token::new(Op::Send, 7, (1 << 28) + 3);
        assert_eq!(Token::decode(t.encode()).generation, 3);
    }
}
