//! A connection's protocol session: feeds input through the parser and runs
//! each complete command, appending replies to the output buffer.

use citadel_net::Endpoint;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use citadel_net::{Progress, Waiter};
use citadel_resp::{Parsed, Reply, RequestParser};

use super::args::Args;
use super::context::{ConnState, Pending, ReplyMode};
use super::dispatch;
use super::error::reply_protocol_error;
use super::pending;
use super::prefetch::Skim;
use crate::clients::ClientShared;
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::{Completion, WaitKey};

pub struct ConnInfo {
    pub id: u64,
    pub peer: Endpoint,
    pub local: Endpoint,
    pub thread: usize,
}

pub struct Session {
    state: Arc<ServerState>,
    parser: RequestParser,
    /// Skims ahead in a pipeline to prefetch its keys; the commands it parsed
    /// run without a second parse (see prefetch.rs).
    skim: Skim,
    conn: ConnState,
    /// Held while the core sheds and all it sends is refused (overload/hold.rs).
    hold: crate::overload::RefusalHold,
    /// Counts this connection among its core's (overload/alone.rs).
    open: Option<crate::overload::OpenConnection>,
}

impl Session {
    pub fn new(state: &Arc<ServerState>, info: ConnInfo) -> Session {
        let client = register_client(state, info);
        let acl = super::acl_check::default_seat(state);
        Session {
            state: state.clone(),
            parser: RequestParser::default(),
            skim: Skim::default(),
            conn: ConnState {
                client,
                resp3: false,
                authed: !state.auth_required(),
                acl,
                db: 0,
                close: false,
                scratch: Vec::new(),
                scratch_spans: Vec::new(),
                pending: None,
                subscriptions: 0,
                pubsub_attached: false,
                monitor: false,
                monitor_attached: false,
                tx: Default::default(),
                tracking: None,
                tracking_attached: false,
                tracking_after_load: Vec::new(),
                reply_mode: Default::default(),
                no_touch: false,
                no_proxy: false,
                cannot_wait: false,
                handed_off: false,
                blocked: None,
                overload: Default::default(),
                pass_input: 0,
            },
            hold: Default::default(),
            open: None,
        }
    }

    /// Starts from what its connection said while a busy script stalled
    /// the thread, before it had a session (busy_greeting.rs).
    pub fn greeted(mut self, greeting: Option<super::busy_greeting::Greeting>) -> Session {
        let Some(greeting) = greeting else {
            return self;
        };
        if let Some(seat) = greeting.seat {
            self.conn.authed = true;
            super::acl_check::seat_user(&mut self.conn, seat);
        }
        self.conn.set_resp3(greeting.resp3);
        if let Some(name) = greeting.name {
            self.conn.client.names().name = name;
        }
        self
    }

    /// Counted among the connections of its core while it lives.
    pub fn counted(mut self, open: Option<crate::overload::OpenConnection>) -> Session {
        self.open = open;
        self
    }

    pub fn id(&self) -> u64 {
        self.conn.client.id
    }

    pub fn is_killed(&self) -> bool {
        self.conn.client.is_killed()
    }

    /// Whether a busy script's hook may answer this connection's commands
    /// (`busy_door.rs`): what those answers depend on is plain here, or
    /// kept where the hook reads it (its user, protocol, subscriptions,
    /// transaction). It is authenticated, not monitoring, its replies on.
    /// (Asked when the loop finds the connection quiet, so it waits for
    /// nothing and runs no EXEC.)
    pub fn stall_plain(&self) -> bool {
        let c = &self.conn;
        c.authed && !c.monitor && c.reply_mode == ReplyMode::On
    }

    /// The loop's held input for this connection changed (CLIENT LIST).
    pub fn input_held(&self, len: usize, spare: usize) {
        self.conn.client.set_input(len, spare);
    }

    /// After its input ran: whether to hold the connection, for `hold`
    /// (the core's, while it sheds); see overload/hold.rs.
    pub fn hold(
        &mut self,
        hold: Option<(std::time::Duration, std::time::Instant)>,
    ) -> Option<std::time::Duration> {
        self.hold.hold(hold)
    }

    /// A core that will refuse all of this client's input from its framing
    /// prefetches none of it: a refusal must cost far less than serving.
    #[inline]
    pub fn sheds_all(&self, ctx: &ThreadCtx) -> bool {
        let priority = self.conn.overload.priority;
        ctx.overload.as_ref().is_some_and(|o| o.sheds_all(priority))
    }

    /// Parses and runs every complete command at the start of `input`,
    /// appending replies to `out`.
    pub fn process(&mut self, ctx: &mut ThreadCtx, input: &[u8], out: &mut Vec<u8>) -> Progress {
        let mut pos = 0;
        let mut need = 0;
        let mut commands = 0;
        let mut refused = 0;
        let age = self.hold.input_age();
        let max_bulk = self.state.limits.proto_max_bulk_len;
        let authed = self.conn.authed || !self.state.auth_required();
        self.conn.pass_input = input.len();
        // ORDERING: Relaxed: set by this thread's own busy-script hook.
        if self.conn.client.stall_tx.load(Ordering::Relaxed) != 0 {
            super::busy_tx::settle(&mut self.conn);
        }
        // A core that will refuse this whole batch from its framing skips
        // the prefetch: a refusal must cost far less than serving. One that
        // may still admit some of it prefetches them as usual.
        if let Some(overload) = ctx.overload.as_mut() {
            overload.pass_began(self.open.as_mut(), input.len());
        }
        // A database other than 0 (or a swapped 0) keeps none of the
        // fast path's hashes of raw keys: its keys are stored prefixed.
        let mut ns = super::databases::namespace_of(&self.state.cache, self.conn.db);
        if self.sheds_all(ctx) || ns != 0 {
            self.skim.clear();
        } else {
            self.skim.prefetch_keys(ctx, input, max_bulk, authed);
        }
        ctx.command_clock.set_pass(true);
        while !self.conn.close {
            if self.is_killed() {
                self.conn.close = true;
                break;
            }
            // Plain GETs and SETs next: run them without dispatch's checks.
            let ran = if ns == 0 {
                super::fast_path::run(
                    &self.state,
                    ctx,
                    &mut self.conn,
                    &mut self.skim,
                    input,
                    &mut pos,
                    out,
                )
            } else {
                0
            };
            if ran > 0 {
                // A command left incomplete by the last call is whole now.
                self.parser.reset();
                commands += ran;
                if self.conn.pending.is_some() {
                    break;
                }
            }
            let rest = &input[pos..];
            let authed = self.conn.authed || !self.state.auth_required();
            if let Some(end) = super::admission::shed_from_frame(
                ctx,
                &mut self.conn,
                rest,
                max_bulk,
                authed,
                age,
                out,
            ) {
                // A command the parser left incomplete last call is whole now.
                self.parser.reset();
                commands += 1;
                refused += 1;
                pos += end;
                continue;
            }
            let skimmed = self.skim.take(pos);
            let parsed = match skimmed {
                Some((end, _)) => {
                    // A command left incomplete by the last call is whole now.
                    self.parser.reset();
                    Parsed::Command { end, inline: false }
                }
                None => self.parser.parse(rest, max_bulk, authed),
            };
            match parsed {
                Parsed::Incomplete { need: n } => {
                    need = n;
                    break;
                }
                Parsed::Empty { end } => pos += end,
                Parsed::Error(e) => {
                    reply_protocol_error(&mut Reply::new(out, self.conn.resp3), e);
                    pos = input.len();
                    self.conn.close = true;
                }
                Parsed::Command { end, inline } => {
                    let spans = match skimmed {
                        Some((_, spans)) => spans,
                        None => &self.parser.args[..],
                    };
                    let args = Args::new(self.parser.buf(rest, inline), spans);
                    // A monitor is exempt from CLIENT PAUSE, as Redis's replicas are.
                    if !self.conn.monitor
                        && super::pause_gate::holds(&self.state, ctx, &self.conn, args)
                    {
                        // Not consumed: it runs once the pause ends.
                        self.conn.pending = Some(Pending::Paused { client: self.id() });
                        self.state.introspect.pause.hold_one();
                        ctx.paused.push(self.id());
                        break;
                    }
                    if self.conn.blocked.is_some()
                        && super::blocking::unblocked_with_error(&self.state, &mut self.conn)
                    {
                        // CLIENT UNBLOCK ... ERROR: the command ends unrun.
                        let reply = b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n";
                        out.extend_from_slice(reply);
                        if let Some((cmd, _)) = super::table::lookup(args.get(0)) {
                            super::observe::failed_after_block(ctx, cmd, reply);
                        }
                        commands += 1;
                        pos += end;
                        continue;
                    }
                    // NO-TOUCH: no access counted, except by TOUCH itself
                    // (the mode as the command began: it may switch it).
                    let no_touch = self.conn.no_touch;
                    if no_touch {
                        ctx.cache.set_no_touch(!args.is(0, "touch"));
                    }
                    ctx.cache.set_namespace(ns);
                    dispatch::run(&self.state, ctx, &mut self.conn, args, out);
                    ctx.cache.set_namespace(0);
                    // SELECT, SWAPDB, RESET may have moved it.
                    ns = super::databases::namespace_of(&self.state.cache, self.conn.db);
                    if no_touch {
                        ctx.cache.set_no_touch(false);
                    }
                    if matches!(
                        self.conn.pending,
                        Some(Pending::Blocked { .. } | Pending::Handoff { .. })
                    ) {
                        // Not consumed: it runs again when woken (or once
                        // its keys are handed off).
                        break;
                    }
                    commands += 1;
                    pos += end;
                    if self.conn.pending.is_some() {
                        break;
                    }
                }
            }
        }
        ctx.command_clock.set_pass(false);
        self.hold.ran(commands, refused, !age.is_zero());
        if commands > 0 {
            ctx.stats.commands.fetch_add(commands, Ordering::Relaxed);
            self.conn
                .client
                .last_ms
                .store(ctx.cache.now_ms(), Ordering::Relaxed);
        }
        Progress {
            consumed: pos,
            close: self.conn.close,
            need,
            parked: self.conn.pending.is_some(),
            // A new subscriber or monitor: the loop hands over its waiter (`attach`);
            // a parked one gets it handed over by that park already.
            detached: self.wants_waiter() && self.conn.pending.is_none(),
        }
    }

    /// The connection subscribed (or monitors, tracks, or speaks RESP3)
    /// and the Pub/Sub (monitor, tracking) registry does not know where to
    /// deliver to it yet. Any RESP3 connection may be another's REDIRECT
    /// target, and hears its invalidations as pushes, as in Redis.
    pub fn wants_waiter(&self) -> bool {
        (self.conn.subscriptions > 0 && !self.conn.pubsub_attached)
            || ((self.conn.tracking.is_some() || self.conn.resp3) && !self.conn.tracking_attached)
            || (self.conn.monitor && !self.conn.monitor_attached)
    }

    /// Messages, invalidations and monitor lines for this connection go to
    /// `waiter` (for its lifetime).
    pub fn attach(&mut self, ctx: &ThreadCtx, waiter: Waiter) {
        if self.conn.subscriptions > 0 && !self.conn.pubsub_attached {
            ctx.pubsub.attach(self.id(), waiter);
            self.conn.pubsub_attached = true;
        }
        if self.conn.monitor && !self.conn.monitor_attached {
            ctx.monitors.attach(self.id(), waiter);
            self.conn.monitor_attached = true;
        }
        // Any subscriber may be a REDIRECT target of another's tracking.
        let delivery = crate::tracking::Delivery {
            thread: ctx.index,
            waiter,
        };
        self.state.tracking.attach(self.id(), delivery);
        self.conn.tracking_attached = true;
    }

    /// Blocked on keys (BLPOP ...) or held by CLIENT PAUSE: nothing is
    /// owed once the client left (Redis frees such a client and never
    /// runs its held command).
    pub fn owes_nothing_once_gone(&self) -> bool {
        matches!(
            self.conn.pending,
            Some(Pending::Blocked { .. } | Pending::Paused { .. })
        )
    }

    /// Waits for its MIGRATE's target (settled even if the client left).
    pub fn is_migrating(&self) -> bool {
        matches!(self.conn.pending, Some(Pending::Migrate { .. }))
    }

    /// What the connection waits for, if anything.
    pub fn pending_key(&self) -> Option<WaitKey> {
        self.conn.pending.as_ref().map(Pending::key)
    }

    /// The operation this connection waited for finished: write its reply.
    pub fn resume(&mut self, ctx: &mut ThreadCtx, done: Completion, out: &mut Vec<u8>) {
        if let Completion::Invalidate { what, .. } = &done {
            super::tracking::write_invalidation(&self.state, &self.conn, what, out);
            return;
        }
        if let Completion::Message {
            message, pattern, ..
        } = &done
        {
            // One still in flight after the last unsubscription is dropped.
            if self.conn.subscriptions > 0 {
                let mut reply = Reply::new(out, self.conn.resp3);
                super::pubsub::write_message(&mut reply, message, pattern.as_deref());
            }
            return;
        }
        if let Completion::Monitor { line, .. } = &done {
            // Dropped once RESET ended monitoring, and with CLIENT REPLY OFF.
            if self.conn.monitor && self.conn.reply_mode != ReplyMode::Off {
                out.extend_from_slice(line);
            }
            return;
        }
        let ns = super::databases::namespace_of(&self.state.cache, self.conn.db);
        ctx.cache.set_namespace(ns);
        pending::resume(&self.state, ctx, &mut self.conn, done, out);
        ctx.cache.set_namespace(0);
        if !self.conn.tracking_after_load.is_empty() {
            super::tracking::remember_after_load(&self.state, ctx, &mut self.conn);
        }
    }
}

/// A new connection as CLIENT LIST and INFO see it (both protocols).
pub fn register_client(state: &ServerState, info: ConnInfo) -> Arc<ClientShared> {
    let now = citadel_cache::unix_millis();
    let client = Arc::new(ClientShared::new(
        info.id,
        info.peer,
        info.local,
        info.thread,
        now,
    ));
    state.clients.register(client.clone());
    client
}

impl Drop for Session {
    fn drop(&mut self) {
        self.state.clients.unregister(&self.conn.client);
        if self.conn.subscriptions > 0 {
            self.state.pubsub.remove_client(self.conn.client.id);
        }
        if self.conn.tracking_attached || self.conn.tracking.is_some() {
            self.state.tracking.forget(self.conn.client.id);
        }
        if self.conn.monitor {
            self.state.monitors.remove(self.conn.client.id);
        }
        if let Some(blocked) = self.conn.blocked.take() {
            blocked.release(&self.state.blocked, self.conn.client.id);
        }
        if matches!(self.conn.pending, Some(Pending::Paused { .. })) {
            self.state.introspect.pause.release_one();
        }
    }
}
