//! The shedding order. A request's rank combines its client's priority
//! with its command's class; under overload a core sheds ranks from the
//! lowest up (each rank waits longer before it is shed, see `admission`):
//!
//! | rank | client | class   |
//! |------|--------|---------|
//! | 0    | low    | compute |
//! | 1    | low    | write   |
//! | 2    | low    | read    |
//! | 3    | normal | compute |
//! | ...  |        |         |
//! | 8    | high   | read    |
//!
//! Compute (plugin and pipeline calls, scripts) goes first: it costs the
//! most CPU per request, so each one shed frees the most capacity, and its
//! callers can retry later. Writes before reads: a cache's reads are its
//! purpose and the cheapest to serve, while a refused write of a cache is
//! re-populated on the next miss. Admin and health commands (PING, INFO,
//! CLIENT, CONFIG, AUTH, HELLO, SHUTDOWN ...) have no rank: never shed.

pub use citadel_settings::overload::ClientPriority;

/// What a command does, for the shedding order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandClass {
    /// Never shed (health, admin, connection state).
    Admin,
    Read,
    Write,
    /// Plugin and pipeline calls, scripts.
    Compute,
}

/// Ranks 0..=8 are sheddable; [`Rank::UNRANKED`] (admin commands, and
/// connection refusals, which have no command) is never shed by a core.
pub const RANKS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank(u8);

impl Rank {
    pub const UNRANKED: Rank = Rank(9);
    /// The sheddable rank with the highest threshold (a high-priority
    /// client's read).
    pub const MOST_PATIENT: Rank = Rank(8);

    pub fn of(client: ClientPriority, class: CommandClass) -> Rank {
        let class = match class {
            CommandClass::Admin => return Rank::UNRANKED,
            CommandClass::Compute => 0,
            CommandClass::Write => 1,
            CommandClass::Read => 2,
        };
        let client = match client {
            ClientPriority::Low => 0,
            ClientPriority::Normal => 1,
            ClientPriority::High => 2,
        };
        Rank(client * 3 + class)
    }

    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// "low-compute" ... "high-read", "unranked".
    pub fn name(self) -> &'static str {
        const NAMES: [&str; RANKS] = [
            "low_compute",
            "low_write",
            "low_read",
            "normal_compute",
            "normal_write",
            "normal_read",
            "high_compute",
            "high_write",
            "high_read",
            "unranked",
        ];
        NAMES[self.index()]
    }

    pub fn all() -> impl Iterator<Item = Rank> {
        (0..RANKS as u8).map(Rank)
    }
}

/// An RPC request's priority field (higher is more important, 0 the
/// default) as a client priority: 1-63 low, 0 and 64-191 normal, 192+ high.
pub fn rpc_priority(priority: u8) -> ClientPriority {
    match priority {
        1..=63 => ClientPriority::Low,
        192.. => ClientPriority::High,
        _ => ClientPriority::Normal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_clients_and_compute_go_first_admin_never() {
        use ClientPriority::*;
        use CommandClass::*;
        assert!(Rank::of(Low, Read) < Rank::of(Normal, Compute));
        assert!(Rank::of(Normal, Compute) < Rank::of(Normal, Write));
        assert!(Rank::of(Normal, Write) < Rank::of(Normal, Read));
        assert!(Rank::of(High, Read) < Rank::UNRANKED);
        assert_eq!(Rank::of(High, Read), Rank::MOST_PATIENT);
        assert_eq!(Rank::of(Low, Admin), Rank::UNRANKED);
        assert_eq!(rpc_priority(0), Normal);
        assert_eq!(rpc_priority(10), Low);
        assert_eq!(rpc_priority(200), High);
    }
}
