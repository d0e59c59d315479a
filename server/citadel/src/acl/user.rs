//! One ACL user: its flags, password hashes and its (root) selector of
//! commands, key patterns and channel patterns, with the permission tests
//! every command runs through. A user is immutable once published: ACL
//! SETUSER builds a changed copy (`rules.rs`) and swaps it in.

use std::collections::BTreeMap;

use super::catalog::Catalog;
use crate::glob::glob_match;

/// A key pattern and what it lets a command do with matching keys
/// (`~p`: both, `%R~p`: read, `%W~p`: write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Vec<u8>,
    pub read: bool,
    pub write: bool,
}

/// What a user may run and touch (Redis's root selector).
#[derive(Clone, Debug, Default)]
pub struct Selector {
    /// One bit per command index (`Catalog`).
    pub allowed: Vec<u64>,
    /// Set by `+@all` only: commands added later are allowed too (and the
    /// description starts with `+@all`).
    pub future: bool,
    /// Every command allowed: `+@all` and nothing taken away since.
    pub all_commands: bool,
    /// `+select|0`: first arguments allowed of a command otherwise denied.
    pub first_args: BTreeMap<usize, Vec<Vec<u8>>>,
    pub all_keys: bool,
    pub keys: Vec<KeyPattern>,
    pub all_channels: bool,
    pub channels: Vec<Vec<u8>>,
}

impl Selector {
    pub fn bit(&self, idx: usize) -> bool {
        self.allowed
            .get(idx / 64)
            .is_some_and(|w| w & (1 << (idx % 64)) != 0)
    }

    pub fn set_bit(&mut self, idx: usize, on: bool) {
        if self.allowed.len() <= idx / 64 {
            self.allowed.resize(idx / 64 + 1, 0);
        }
        if on {
            self.allowed[idx / 64] |= 1 << (idx % 64);
        } else {
            self.allowed[idx / 64] &= !(1 << (idx % 64));
            self.all_commands = false;
        }
    }

    /// `+cmd` / `-cmd`: the command and its subcommands; its first-arg
    /// exceptions go.
    pub fn change_perm(&mut self, catalog: &Catalog, idx: usize, on: bool) {
        self.set_bit(idx, on);
        self.first_args.remove(&idx);
        if let Some(e) = catalog.get(idx) {
            for &sub in &e.subs {
                self.set_bit(sub, on);
            }
        }
    }

    /// `+@cat` / `-@cat`: every command of the category, in table order.
    pub fn set_category(&mut self, catalog: &Catalog, bit: u32, on: bool) {
        let hits: Vec<usize> = catalog
            .walk()
            .filter(|(_, e)| e.categories & bit != 0)
            .map(|(i, _)| i)
            .collect();
        for idx in hits {
            self.change_perm(catalog, idx, on);
        }
    }

    /// `+@all` (true) or `-@all` (false).
    pub fn set_all(&mut self, catalog: &Catalog, on: bool) {
        let words = catalog.len().div_ceil(64);
        self.allowed = vec![if on { u64::MAX } else { 0 }; words];
        self.future = on;
        self.all_commands = on;
        self.first_args.clear();
    }

    /// Whether the command (global index `idx`) may run; `first_arg` is
    /// the argument a `+cmd|arg` rule names.
    pub fn allows_command(&self, idx: usize, first_arg: Option<&[u8]>) -> bool {
        if self.all_commands || self.bit(idx) {
            return true;
        }
        let (Some(arg), Some(allowed)) = (first_arg, self.first_args.get(&idx)) else {
            return false;
        };
        allowed.iter().any(|a| a.eq_ignore_ascii_case(arg))
    }

    /// Whether a key may be read (`read`) and/or written (`write`).
    pub fn allows_key(&self, key: &[u8], read: bool, write: bool) -> bool {
        self.all_keys
            || self
                .keys
                .iter()
                .any(|p| (p.read || !read) && (p.write || !write) && glob_match(&p.pattern, key))
    }

    /// A channel matches the patterns as a glob; a pattern subscribed to
    /// (PSUBSCRIBE) must be one of them literally.
    pub fn allows_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| {
                if is_pattern {
                    p == channel
                } else {
                    glob_match(p, channel)
                }
            })
    }
}

/// `sanitize-payload` / `skip-sanitize-payload` (kept and shown; Citadel
/// checks every RESTORE payload either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sanitize {
    Unset,
    Sanitize,
    Skip,
}

#[derive(Clone, Debug)]
pub struct User {
    pub name: Vec<u8>,
    pub enabled: bool,
    pub nopass: bool,
    pub sanitize: Sanitize,
    /// SHA-256 hashes, 64 lowercase hex characters each, in the order added.
    pub passwords: Vec<String>,
    pub selector: Selector,
}

impl User {
    /// A new user as ACL SETUSER creates it: off, no passwords, nothing allowed.
    pub fn new(name: &[u8], catalog: &Catalog) -> User {
        let mut selector = Selector::default();
        selector.set_all(catalog, false);
        User {
            name: name.to_vec(),
            enabled: false,
            nopass: false,
            sanitize: Sanitize::Unset,
            passwords: Vec::new(),
            selector,
        }
    }

    /// The `default` user of a fresh server: everything, no password.
    pub fn default_user(catalog: &Catalog) -> User {
        let mut user = User::new(b"default", catalog);
        user.enabled = true;
        user.nopass = true;
        user.selector.set_all(catalog, true);
        user.selector.all_keys = true;
        user.selector.all_channels = true;
        user
    }

    /// Nothing to check per command: every command, key and channel.
    pub fn unrestricted(&self) -> bool {
        let s = &self.selector;
        s.all_commands && s.all_keys && s.all_channels
    }

    /// Whether `pass` lets a client in as this user (on, and no password
    /// needed or one matches); the comparison has no early exit.
    pub fn accepts(&self, pass: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let given = hash_password(pass);
        self.passwords.iter().fold(false, |hit, p| {
            hit | same_bytes(p.as_bytes(), given.as_bytes())
        })
    }

    /// Whether a client connecting is already in as this user (Redis
    /// authenticates new connections as `default` when it needs no password).
    pub fn open(&self) -> bool {
        self.enabled && self.nopass
    }
}

fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (x, y) in a.iter().zip(b) {
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// SHA-256 of a password, as 64 lowercase hex characters.
pub fn hash_password(pass: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(pass);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
