//! Overload protection's server side (ARCHITECTURE.md, "Overload
//! protection"): the shared rules (client priorities, quotas) derived from
//! the live settings, each core's admission control, and the one set of
//! counters every layer reports to ([`OverloadStats`]). The connection
//! layer lives in `citadel_net` (it sees accepts); the command layer calls
//! [`ThreadOverload::check`] before running a command.

mod admission;
mod alone;
mod client_class;
mod hold;
mod quota;
pub mod rank;
pub mod stats;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use citadel_settings::overload as setting;
use citadel_settings::Store;

pub use admission::{Admission, Shed};
pub use alone::{CoreConnections, OpenConnection};
pub use client_class::{ClientClass, Identity};
pub use hold::RefusalHold;
pub use rank::{rpc_priority, ClientPriority, CommandClass, Rank};
pub use stats::{Layer, OverloadSnapshot, OverloadStats, Reason};

use client_class::Rules;

/// A refused request: why (for the counters) and the error line without
/// its leading '-' (`OVERLOAD <layer> <reason>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub text: String,
}

impl Refusal {
    pub fn new(reason: Reason, what: impl std::fmt::Display) -> Refusal {
        Refusal {
            reason,
            text: RefusalText { reason, what }.to_string(),
        }
    }

    /// Appends the RESP error line of a core's shed to `out` without
    /// building its text apart (the cheap path: `command::admission`).
    pub fn write_shed_line(shed: &Shed, out: &mut Vec<u8>) {
        out.extend_from_slice(b"-OVERLOAD ");
        out.extend_from_slice(Reason::QueueingDelay.layer().as_str().as_bytes());
        out.push(b' ');
        shed.write_text(out);
        out.extend_from_slice(b"\r\n");
    }
}

/// `OVERLOAD <layer> <what>`: the one place its shape is written.
struct RefusalText<D> {
    reason: Reason,
    what: D,
}

impl<D: std::fmt::Display> std::fmt::Display for RefusalText<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let layer = self.reason.layer().as_str();
        write!(f, "OVERLOAD {layer} {}", self.what)
    }
}

/// The process-wide part: rules (swapped whole on CONFIG SET) and counters.
pub struct Overload {
    pub stats: OverloadStats,
    rules: Mutex<Arc<Rules>>,
    /// Bumped on each change of the rules; threads compare it once per turn.
    generation: AtomicU64,
    target_us: AtomicU64,
}

impl Overload {
    pub fn new(cores: usize) -> Overload {
        Overload {
            stats: OverloadStats::new(cores),
            rules: Mutex::new(Arc::new(Rules::default())),
            generation: AtomicU64::new(1),
            target_us: AtomicU64::new(0),
        }
    }

    /// Re-reads the live settings (start-up and every CONFIG SET); rules
    /// that did not change keep their buckets.
    pub fn refresh(&self, settings: &Store) {
        let priority = settings.get(&setting::OVERLOAD_PRIORITY);
        let quotas = settings.get(&setting::OVERLOAD_QUOTAS);
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        if !rules.same_text(&priority, &quotas) {
            let generation = self.generation.load(Relaxed) + 1;
            *rules = Arc::new(Rules::parse(generation, &priority, &quotas));
            // ORDERING: Relaxed: a thread that sees the new generation
            // takes the rules under the mutex.
            self.generation.store(generation, Relaxed);
        }
        let target = settings.get(&setting::OVERLOAD_DELAY_TARGET_US);
        self.target_us.store(target, Relaxed);
    }

    fn rules(&self) -> Arc<Rules> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The delay target, zero when core admission is off.
    pub fn target(&self) -> Duration {
        Duration::from_micros(self.target_us.load(Relaxed))
    }
}

/// One core's part: its copy of the rules and its admission control.
pub struct ThreadOverload {
    shared: Arc<Overload>,
    core: usize,
    rules: Arc<Rules>,
    /// `rules.has_quotas()`, kept at hand: asked at every command.
    quotas: bool,
    pub admission: Admission,
    /// The last shed's error line and the shed it reads: a core sheds many
    /// requests at one delay (the last reading's: a turn's refusals after
    /// its delay passed their threshold read no clock), and each then costs
    /// one copy (`write_shed_line`).
    shed_line: (Option<Shed>, Vec<u8>),
    /// The client connections of this core, open and lately active.
    connections: CoreConnections,
}

impl ThreadOverload {
    pub fn new(shared: Arc<Overload>, core: usize) -> ThreadOverload {
        let rules = shared.rules();
        ThreadOverload {
            quotas: rules.has_quotas(),
            rules,
            admission: Admission::new(shared.target()),
            shared,
            core,
            shed_line: (None, Vec::new()),
            connections: CoreConnections::default(),
        }
    }

    /// Appends the RESP error line of `shed` (from `shed_early`) to `out`:
    /// `-OVERLOAD core queueing delay ...`, rendered once per distinct shed.
    pub fn write_shed_line(&mut self, shed: &Shed, out: &mut Vec<u8>) {
        let (last, line) = &mut self.shed_line;
        if last.as_ref() != Some(shed) {
            line.clear();
            Refusal::write_shed_line(shed, line);
            *last = Some(*shed);
        }
        out.extend_from_slice(line);
    }

    pub fn stats(&self) -> &OverloadStats {
        &self.shared.stats
    }

    /// A loop turn starts: picks up changed settings.
    pub fn turn_started(&mut self) {
        // ORDERING: Relaxed: see `Overload::refresh`.
        if self.shared.generation.load(Relaxed) != self.rules.generation {
            self.rules = self.shared.rules();
            self.quotas = self.rules.has_quotas();
        }
        self.admission.set_target(self.shared.target());
        if self.admission.enabled() {
            let now = Instant::now();
            self.admission.turn_started(now);
            self.connections.turn_began(now);
        }
    }

    pub fn turn_ended(&mut self) {
        if self.admission.enabled() {
            self.admission.turn_ended(Instant::now());
        }
    }

    /// Whether a command's first key matters (prefix quotas are set).
    pub fn has_prefix_quotas(&self) -> bool {
        self.rules.has_prefixes()
    }

    /// Whether [`ThreadOverload::check`] can refuse anything now: core
    /// admission is on or a quota is set. While neither is, the check
    /// would admit every command and count nothing, so the command layer
    /// skips it (about 150 instructions a command).
    #[inline]
    pub fn may_refuse(&self) -> bool {
        self.admission.enabled() || self.quotas
    }

    pub fn tick(&mut self) {
        self.admission.tick(self.shared.stats.core(self.core));
    }

    /// Counts a client connection of this core while the guard lives.
    pub fn connection_opened(&mut self) -> OpenConnection {
        self.connections.opened()
    }

    /// The core starts a pass over the input of the connection counted by
    /// `open` (RESP or RPC), `input` bytes: alone on the core (no other
    /// connection open, or none that sent shallow input lately), its own
    /// earlier work is no delay (`alone.rs`).
    #[inline]
    pub fn pass_began(&mut self, open: Option<&mut OpenConnection>, input: usize) {
        // (Admission off: nothing is judged, so nothing to note.)
        if !self.admission.enabled() {
            return;
        }
        let alone = match open {
            Some(open) => self.connections.input_began(open, input),
            None => self.connections.alone(),
        };
        self.admission.pass_began(alone);
    }

    /// Whether a command of `class` from the client of `class_cache` (its
    /// identity from `who`, asked only when the rules changed) may run;
    /// `first_key` for prefix quotas, `own` the time the core spent on the
    /// same read's earlier commands (`Admission::admit`; asked only when
    /// the delay is measured).
    /// Admin commands always may. A refusal is counted.
    pub fn check(
        &mut self,
        client: &mut ClientClass,
        who: impl FnOnce() -> Identity,
        priority: Option<ClientPriority>,
        class: CommandClass,
        first_key: Option<&[u8]>,
        own: impl FnOnce() -> Duration,
    ) -> Result<(), Refusal> {
        if class == CommandClass::Admin {
            return Ok(());
        }
        if self.admit_unmeasured(client) {
            return Ok(());
        }
        let rank = self.rank(client, who, priority, class);
        let framed = std::mem::take(&mut client.admitted_at_frame);
        let result = self.admit(client, rank, first_key, framed, own);
        if let Err(refusal) = &result {
            self.shared.stats.count(refusal.reason, rank);
        }
        result
    }

    /// The common case of [`ThreadOverload::check`] for a command that is
    /// not admin: no quota and a core that is not shedding admit it without
    /// working out its rank (see `Admission::admit_unmeasured`).
    #[inline]
    pub fn admit_unmeasured(&mut self, client: &mut ClientClass) -> bool {
        if self.quotas || !self.admission.admit_unmeasured() {
            return false;
        }
        // A mark from its framing, set only while shedding, is moot.
        client.admitted_at_frame = false;
        true
    }

    /// True while the core sheds (its last control interval was over the
    /// target): only then is a command worth refusing before it is parsed.
    #[inline]
    pub fn shedding(&self) -> bool {
        self.admission.shedding()
    }

    /// True when the core sheds even the best-ranked command a client of
    /// `priority` can send (a read) right now: its input will be refused
    /// from framing, so the session does not prefetch it.
    #[inline]
    pub fn sheds_all(&self, priority: ClientPriority) -> bool {
        (self.admission).would_shed(Rank::of(priority, CommandClass::Read))
    }

    /// The core layer alone, asked from a command's framing before it is
    /// parsed: whether the core sheds a command of `class` now (counted).
    /// One it admits is marked so (`ClientClass::admitted_at_frame`) and goes
    /// on to [`ThreadOverload::check`], which takes its quota tokens without
    /// measuring its delay again. `input_age`: how long the command may have
    /// waited before the core could see it (read after a hold), zero if not;
    /// `own` as for [`ThreadOverload::check`].
    pub fn shed_early(
        &mut self,
        client: &mut ClientClass,
        who: impl FnOnce() -> Identity,
        class: CommandClass,
        input_age: Duration,
        own: Duration,
    ) -> Option<Shed> {
        if class == CommandClass::Admin {
            return None;
        }
        let rank = self.rank(client, who, None, class);
        let gauges = self.shared.stats.core(self.core);
        let stale = self.admission.shed_stale(rank, input_age);
        let Err(shed) = stale.map_or_else(|| self.admission.admit(rank, own, gauges), Err) else {
            client.admitted_at_frame = true;
            return None;
        };
        self.shared.stats.count(Reason::QueueingDelay, rank);
        Some(shed)
    }

    fn rank(
        &self,
        client: &mut ClientClass,
        who: impl FnOnce() -> Identity,
        priority: Option<ClientPriority>,
        class: CommandClass,
    ) -> Rank {
        if client.generation != self.rules.generation {
            *client = self.rules.classify(&who());
        }
        Rank::of(priority.unwrap_or(client.priority), class)
    }

    /// `framed`: the core layer admitted it already (`shed_early`).
    fn admit(
        &mut self,
        client: &ClientClass,
        rank: Rank,
        first_key: Option<&[u8]>,
        framed: bool,
        own: impl FnOnce() -> Duration,
    ) -> Result<(), Refusal> {
        let gauges = self.shared.stats.core(self.core);
        if !framed {
            if let Err(shed) = self.admission.admit(rank, own(), gauges) {
                return Err(Refusal::new(Reason::QueueingDelay, shed));
            }
        }
        if !self.rules.has_quotas() {
            return Ok(());
        }
        self.rules.take_tokens(client, first_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core with a 1 ms delay target, a client of the default class and
    /// the read class.
    fn shedding_core() -> (ThreadOverload, ClientClass, CommandClass) {
        let shared = Arc::new(Overload::new(1));
        shared.target_us.store(1000, Relaxed);
        (
            ThreadOverload::new(shared, 0),
            ClientClass::default(),
            CommandClass::Read,
        )
    }

    fn who() -> Identity {
        Identity {
            name: Vec::new(),
            lib: Vec::new(),
            user: Vec::new(),
        }
    }

    #[test]
    fn a_command_admitted_at_its_framing_is_not_measured_again() {
        let (mut core, mut client, read) = shedding_core();
        // Shedding; a normal read's delay (3 ms) under its threshold (3.5 ms).
        core.admission.shedding_with(Duration::from_millis(3));
        assert!(core
            .shed_early(&mut client, who, read, Duration::ZERO, Duration::ZERO)
            .is_none());
        assert!(client.admitted_at_frame);
        // By its full check the delay passed the threshold: measured again,
        // the command admitted at its framing would be refused.
        core.admission.shedding_with(Duration::from_millis(10));
        assert_eq!(
            core.check(&mut client, who, None, read, None, || Duration::ZERO),
            Ok(())
        );
        assert!(!client.admitted_at_frame, "the mark is used once");
        let next = core.check(&mut client, who, None, read, None, || Duration::ZERO);
        assert!(next.is_err(), "the next command is measured");
    }

    #[test]
    fn input_read_after_a_hold_is_judged_as_old_as_the_hold() {
        let (mut core, mut client, read) = shedding_core();
        assert_eq!(core.refusal_hold(), None, "not shedding: no hold");
        let late = core.shed_early(
            &mut client,
            who,
            read,
            Duration::from_millis(4),
            Duration::ZERO,
        );
        assert!(
            late.is_some(),
            "held past its threshold: refused all the same"
        );
        // Shedding, the turn's own delay nil: a normal read's threshold is
        // 3.5 ms; input that may have waited 4 ms in a hold is past it.
        core.admission.shedding_with(Duration::ZERO);
        let hold = core.refusal_hold().map(|(hold, _)| hold);
        assert_eq!(hold, Some(Duration::from_millis(5)));
        let shed = core.shed_early(
            &mut client,
            who,
            read,
            Duration::from_millis(4),
            Duration::ZERO,
        );
        assert_eq!(shed.map(|s| s.delay), Some(Duration::from_millis(4)));
        let fresh = core.shed_early(
            &mut client,
            who,
            read,
            Duration::from_millis(3),
            Duration::ZERO,
        );
        assert!(fresh.is_none(), "within the threshold: measured as usual");
        assert_eq!(core.stats().snapshot().total(), 2);
    }
}
