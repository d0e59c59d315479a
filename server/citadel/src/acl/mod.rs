//! ACL users and permissions (Redis 7.0's ACL, root selectors only).
//!
//! The user table is process-wide, behind a lock taken only by AUTH, ACL
//! commands and a connection noticing a change. Users are immutable
//! snapshots (`Arc<User>`): ACL SETUSER publishes a changed copy and bumps
//! [`Acl::generation`]; each connection keeps its user's snapshot and the
//! generation it saw, and compares that one word per command, so a change
//! made on any core applies to every connection's next command. The
//! `default` user mirrors `requirepass` as in Redis.
//!
//! What a command name means (its index, categories, subcommands) comes
//! from the command layer as a [`Catalog`], installed once.

pub mod catalog;
pub mod describe;
pub mod file;
pub mod log;
pub mod rules;
pub mod user;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

pub use catalog::Catalog;
pub use rules::RuleError;
pub use user::User;

/// Why ACL SETUSER refused (its reply texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetUserError {
    #[error("ERR Usernames can't contain spaces or null characters")]
    BadName,
    #[error("ERR Error in ACL SETUSER modifier '{rule}': {error}")]
    Rule { rule: String, error: RuleError },
}

pub struct Acl {
    catalog: OnceLock<&'static Catalog>,
    users: RwLock<BTreeMap<Vec<u8>, Arc<User>>>,
    /// Bumped (Release) after every change to the table.
    generation: AtomicU64,
    /// Whether a new connection must AUTH (`default` is off or has a password).
    auth_required: AtomicBool,
    /// The `requirepass` last applied to `default` (None: none yet).
    requirepass: Mutex<Option<Option<String>>>,
    pub log: log::Log,
}

impl Acl {
    pub fn new(requirepass: Option<String>) -> Acl {
        Acl {
            catalog: OnceLock::new(),
            users: RwLock::new(BTreeMap::new()),
            generation: AtomicU64::new(0),
            auth_required: AtomicBool::new(requirepass.is_some()),
            requirepass: Mutex::new(Some(requirepass)),
            log: log::Log::default(),
        }
    }

    /// Installs what command names mean and creates `default` (from the
    /// `requirepass` given so far). Later calls do nothing.
    pub fn install(&self, catalog: &'static Catalog) {
        if self.catalog.set(catalog).is_err() {
            return;
        }
        let pass = self.lock_requirepass().take().flatten();
        let mut user = User::default_user(catalog);
        apply_requirepass(&mut user, catalog, pass.as_deref());
        *self.lock_requirepass() = Some(pass);
        self.publish(|users| {
            users.insert(b"default".to_vec(), Arc::new(user));
        });
    }

    fn lock_requirepass(&self) -> std::sync::MutexGuard<'_, Option<Option<String>>> {
        self.requirepass.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn catalog(&self) -> Option<&'static Catalog> {
        self.catalog.get().copied()
    }

    /// Changes one word per change of the table (read per command).
    #[inline]
    pub fn generation(&self) -> u64 {
        // ORDERING: Acquire pairs with `publish`'s Release: a reader that
        // sees the new generation sees the table it changed with.
        self.generation.load(Ordering::Acquire)
    }

    #[inline]
    pub fn auth_required(&self) -> bool {
        self.auth_required.load(Ordering::Relaxed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Vec<u8>, Arc<User>>> {
        self.users.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the table and publishes the change to every connection.
    fn publish<R>(&self, change: impl FnOnce(&mut BTreeMap<Vec<u8>, Arc<User>>) -> R) -> R {
        let mut users = self.users.write().unwrap_or_else(|p| p.into_inner());
        let out = change(&mut users);
        let open = users.get(&b"default"[..]).is_some_and(|u| u.open());
        self.auth_required.store(!open, Ordering::Relaxed);
        // ORDERING: Release, under the write lock: see `generation`.
        self.generation.fetch_add(1, Ordering::Release);
        out
    }

    pub fn get(&self, name: &[u8]) -> Option<Arc<User>> {
        self.read().get(name).cloned()
    }

    /// Every user, sorted by name (ACL USERS, ACL LIST).
    pub fn users(&self) -> Vec<Arc<User>> {
        self.read().values().cloned().collect()
    }

    /// ACL SETUSER: creates the user if needed, then applies the rules, all
    /// or none. Returns the previous version (None: created).
    pub fn set_user(
        &self,
        name: &[u8],
        rules: &[&[u8]],
    ) -> Result<Option<Arc<User>>, SetUserError> {
        let catalog = self.catalog().expect("ACL used before install");
        if !rules::valid_name(name) {
            return Err(SetUserError::BadName);
        }
        let before = self.get(name);
        let mut user = match &before {
            Some(u) => User::clone(u),
            None => User::new(name, catalog),
        };
        for rule in rules {
            rules::apply(&mut user, catalog, rule).map_err(|error| SetUserError::Rule {
                rule: String::from_utf8_lossy(rule).into_owned(),
                error,
            })?;
        }
        self.publish(|users| users.insert(name.to_vec(), Arc::new(user)));
        Ok(before)
    }

    /// ACL DELUSER: removes the users that exist (never `default`);
    /// returns their names.
    pub fn delete(&self, names: &[&[u8]]) -> Vec<Vec<u8>> {
        self.publish(|users| {
            names
                .iter()
                .filter(|n| users.remove(**n).is_some())
                .map(|n| n.to_vec())
                .collect()
        })
    }

    /// ACL LOAD: the file's users replace the table (`default` as the file
    /// has it, or a fresh one). Returns the users that existed before.
    pub fn replace_all(&self, loaded: BTreeMap<Vec<u8>, User>) -> Vec<Arc<User>> {
        let catalog = self.catalog().expect("ACL used before install");
        self.publish(|users| {
            let old: Vec<Arc<User>> = users.values().cloned().collect();
            users.clear();
            for (name, user) in loaded {
                users.insert(name, Arc::new(user));
            }
            users
                .entry(b"default".to_vec())
                .or_insert_with(|| Arc::new(User::default_user(catalog)));
            old
        })
    }

    /// Applies a changed `requirepass` to `default` (CONFIG SET requirepass):
    /// its passwords become that one (or `nopass` when unset).
    pub fn requirepass_changed(&self, requirepass: Option<String>) {
        let Some(catalog) = self.catalog() else {
            *self.lock_requirepass() = Some(requirepass);
            return;
        };
        {
            let mut seen = self.lock_requirepass();
            if seen.as_ref() == Some(&requirepass) {
                return;
            }
            *seen = Some(requirepass.clone());
        }
        self.publish(|users| {
            if let Some(current) = users.get(&b"default"[..]) {
                let mut user = User::clone(current);
                apply_requirepass(&mut user, catalog, requirepass.as_deref());
                users.insert(b"default".to_vec(), Arc::new(user));
            }
        });
    }
}

/// Redis's mapping: `requirepass p` is `resetpass >p`; none is `nopass`.
fn apply_requirepass(user: &mut User, catalog: &Catalog, pass: Option<&str>) {
    let rules: Vec<Vec<u8>> = match pass {
        Some(p) => vec![b"resetpass".to_vec(), [b">", p.as_bytes()].concat()],
        None => vec![b"nopass".to_vec()],
    };
    for rule in rules {
        // Both rules always apply (neither can fail).
        let _ = rules::apply(user, catalog, &rule);
    }
}

/// A connection's user: the snapshot its commands are checked against,
/// and the table generation it was taken at (a newer one means: look the
/// user up again before the next command).
#[derive(Clone, Debug)]
pub struct Seat {
    pub user: Arc<User>,
    pub seen: u64,
    /// The user may run anything on any key and channel: nothing to check.
    pub unrestricted: bool,
}

impl Seat {
    pub fn new(user: Arc<User>, seen: u64) -> Seat {
        let unrestricted = user.unrestricted();
        Seat {
            user,
            seen,
            unrestricted,
        }
    }

    /// Whether the snapshot is still the table's (one load per command).
    #[inline]
    pub fn current(&self, acl: &Acl) -> bool {
        acl.generation() == self.seen
    }
}

impl Acl {
    /// A seat for user `name`, if it exists (the generation is read
    /// before the table, so a change in between is seen later).
    pub fn seat(&self, name: &[u8]) -> Option<Seat> {
        let seen = self.generation();
        self.get(name).map(|u| Seat::new(u, seen))
    }

    /// A seat for a user that may run nothing (a deleted user's client,
    /// about to be closed).
    pub fn nobody(&self, name: &[u8]) -> Seat {
        let catalog = self.catalog().expect("ACL used before install");
        Seat::new(Arc::new(User::new(name, catalog)), self.generation())
    }
}
