//! Pub/Sub's process-wide registry: who is subscribed to which channel,
//! pattern and shard channel, and on which thread each subscriber lives.
//! Only the Pub/Sub commands (and a subscriber's disconnect) touch it;
//! GET/SET never do. PUBLISH takes the read lock, finds its receivers and
//! mails each receiving thread one [`Mail::Publish`](crate::wait::Mail)
//! with the message shared behind an `Arc`; that thread writes it into each
//! subscriber's output through the completion path (see `thread.rs`), so a
//! publisher never waits for a subscriber and a slow subscriber is cut off
//! by the output limit like any other client.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use citadel_net::Waiter;

use crate::glob::glob_match;

/// The three namespaces of subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel = 0,
    Pattern = 1,
    Shard = 2,
}

/// A published message, shared by every delivery of it.
#[derive(Debug)]
pub struct Message {
    /// True for SPUBLISH (delivered as "smessage").
    pub shard: bool,
    pub channel: Box<[u8]>,
    pub payload: Box<[u8]>,
}

/// One receiver of a message on its thread: the client, and the pattern it
/// matched through (a "pmessage"), if any.
#[derive(Debug)]
pub struct Delivery {
    pub client: u64,
    pub pattern: Option<Arc<[u8]>>,
}

struct Subscriber {
    thread: usize,
    /// The connection to write to, known once the loop parked it (see
    /// `Session::process`'s `detached`).
    waiter: Option<Waiter>,
    names: [HashSet<Arc<[u8]>>; 3],
}

#[derive(Default)]
struct Inner {
    /// Per kind: name -> subscribed client ids.
    by_name: [HashMap<Arc<[u8]>, Vec<u64>>; 3],
    clients: HashMap<u64, Subscriber>,
}

impl Inner {
    /// The subscriber `d` names, if it is still subscribed to the channel
    /// or pattern the message reached it through.
    fn subscriber_of(&self, message: &Message, d: &Delivery) -> Option<&Subscriber> {
        let sub = self.clients.get(&d.client)?;
        let (kind, name) = match (&d.pattern, message.shard) {
            (Some(pattern), _) => (Kind::Pattern, &pattern[..]),
            (None, true) => (Kind::Shard, &message.channel[..]),
            (None, false) => (Kind::Channel, &message.channel[..]),
        };
        sub.names[kind as usize].contains(name).then_some(sub)
    }
}

#[derive(Default)]
pub struct Registry {
    inner: RwLock<Inner>,
}

impl Registry {
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes `client` (served by `thread`); false if it already was.
    pub fn subscribe(&self, client: u64, thread: usize, kind: Kind, name: &[u8]) -> bool {
        let mut inner = self.write();
        let sub = inner.clients.entry(client).or_insert_with(|| Subscriber {
            thread,
            waiter: None,
            names: Default::default(),
        });
        let name: Arc<[u8]> = name.into();
        if !sub.names[kind as usize].insert(name.clone()) {
            return false;
        }
        inner.by_name[kind as usize]
            .entry(name)
            .or_default()
            .push(client);
        true
    }

    /// Unsubscribes `client`; false if it was not subscribed.
    pub fn unsubscribe(&self, client: u64, kind: Kind, name: &[u8]) -> bool {
        let mut inner = self.write();
        let Some(sub) = inner.clients.get_mut(&client) else {
            return false;
        };
        if !sub.names[kind as usize].remove(name) {
            return false;
        }
        if sub.names.iter().all(HashSet::is_empty) {
            inner.clients.remove(&client);
        }
        forget(&mut inner.by_name[kind as usize], name, client);
        true
    }

    /// Every name `client` is subscribed to in `kind`.
    pub fn names(&self, client: u64, kind: Kind) -> Vec<Arc<[u8]>> {
        let inner = self.read();
        inner.clients.get(&client).map_or_else(Vec::new, |s| {
            s.names[kind as usize].iter().cloned().collect()
        })
    }

    /// How many subscriptions of each kind `client` has.
    pub fn counts(&self, client: u64) -> [usize; 3] {
        let inner = self.read();
        inner
            .clients
            .get(&client)
            .map_or([0; 3], |s| s.names.each_ref().map(HashSet::len))
    }

    /// The connection of `client` (it subscribed before) is `waiter`.
    pub fn attach(&self, client: u64, waiter: Waiter) {
        if let Some(sub) = self.write().clients.get_mut(&client) {
            sub.waiter = Some(waiter);
        }
    }

    /// The connection of each receiver that is still subscribed to what
    /// the message reached it through (one may have unsubscribed since).
    pub fn waiters(&self, message: &Message, receivers: &[Delivery]) -> Vec<Option<Waiter>> {
        let inner = self.read();
        receivers
            .iter()
            .map(|d| inner.subscriber_of(message, d).and_then(|s| s.waiter))
            .collect()
    }

    /// Drops every subscription of `client` (disconnect, RESET).
    pub fn remove_client(&self, client: u64) {
        let mut inner = self.write();
        let Some(sub) = inner.clients.remove(&client) else {
            return;
        };
        for (kind, names) in sub.names.iter().enumerate() {
            for name in names {
                forget(&mut inner.by_name[kind], name, client);
            }
        }
    }

    /// The receivers of a message on `channel`, grouped by thread, and
    /// their number (PUBLISH's reply). A plain message also goes to every
    /// pattern that matches the channel, once per pattern.
    pub fn receivers(&self, shard: bool, channel: &[u8]) -> (usize, Vec<(usize, Vec<Delivery>)>) {
        let inner = self.read();
        let mut by_thread: Vec<(usize, Vec<Delivery>)> = Vec::new();
        let mut count = 0;
        let mut add = |client: u64, pattern: Option<&Arc<[u8]>>| {
            let Some(sub) = inner.clients.get(&client) else {
                return;
            };
            count += 1;
            let delivery = Delivery {
                client,
                pattern: pattern.cloned(),
            };
            match by_thread.iter_mut().find(|(t, _)| *t == sub.thread) {
                Some((_, list)) => list.push(delivery),
                None => by_thread.push((sub.thread, vec![delivery])),
            }
        };
        let kind = if shard { Kind::Shard } else { Kind::Channel };
        for &client in inner.by_name[kind as usize]
            .get(channel)
            .into_iter()
            .flatten()
        {
            add(client, None);
        }
        if !shard {
            for (pattern, clients) in &inner.by_name[Kind::Pattern as usize] {
                if glob_match(pattern, channel) {
                    for &client in clients {
                        add(client, Some(pattern));
                    }
                }
            }
        }
        (count, by_thread)
    }

    /// Active names of `kind` matching `pattern` (all without one).
    pub fn active(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Arc<[u8]>> {
        let inner = self.read();
        inner.by_name[kind as usize]
            .keys()
            .filter(|name| pattern.is_none_or(|p| glob_match(p, name)))
            .cloned()
            .collect()
    }

    /// Subscribers of `name` in `kind`.
    pub fn subscriber_count(&self, kind: Kind, name: &[u8]) -> usize {
        self.read().by_name[kind as usize]
            .get(name)
            .map_or(0, Vec::len)
    }

    /// Distinct patterns subscribed to (PUBSUB NUMPAT).
    pub fn pattern_count(&self) -> usize {
        self.read().by_name[Kind::Pattern as usize].len()
    }
}

/// Removes `client` from `name`'s subscribers, and the name once unused.
fn forget(map: &mut HashMap<Arc<[u8]>, Vec<u64>>, name: &[u8], client: u64) {
    if let Some(list) = map.get_mut(name) {
        list.retain(|&c| c != client);
        if list.is_empty() {
            map.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_count_channels_and_patterns_per_thread() {
        let r = Registry::default();
        assert!(r.subscribe(1, 0, Kind::Channel, b"news"));
        assert!(!r.subscribe(1, 0, Kind::Channel, b"news"));
        assert!(r.subscribe(1, 0, Kind::Pattern, b"n*"));
        assert!(r.subscribe(2, 1, Kind::Pattern, b"n*"));
        assert!(r.subscribe(3, 1, Kind::Shard, b"news"));
        let (count, threads) = r.receivers(false, b"news");
        assert_eq!(count, 3);
        assert_eq!(threads.len(), 2);
        assert_eq!(r.receivers(true, b"news").0, 1);
        assert_eq!(r.counts(1), [1, 1, 0]);
        assert_eq!(r.pattern_count(), 1);
        r.remove_client(1);
        assert_eq!(r.receivers(false, b"news").0, 1);
        assert!(r.unsubscribe(2, Kind::Pattern, b"n*"));
        assert_eq!(r.pattern_count(), 0);
        assert_eq!(r.active(Kind::Shard, Some(b"n*")).len(), 1);
        assert!(r.active(Kind::Channel, None).is_empty());
    }

    #[test]
    fn a_message_in_flight_skips_who_unsubscribed_meanwhile() {
        let r = Registry::default();
        r.subscribe(1, 0, Kind::Channel, b"a");
        r.subscribe(1, 0, Kind::Pattern, b"a*");
        let (_, mut threads) = r.receivers(false, b"a");
        let receivers = threads.remove(0).1;
        let message = Message {
            shard: false,
            channel: b"a"[..].into(),
            payload: b"x"[..].into(),
        };
        let reached = |r: &Registry| {
            let inner = r.read();
            receivers
                .iter()
                .map(|d| inner.subscriber_of(&message, d).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(reached(&r), [true, true]);
        r.unsubscribe(1, Kind::Channel, b"a");
        assert_eq!(reached(&r), [false, true]);
    }
}
