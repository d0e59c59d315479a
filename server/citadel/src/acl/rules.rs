//! ACL rules (`on`, `>pass`, `+@read`, `~key*`, `&chan` ...) applied to a
//! user, with Redis 7.0's semantics and error texts.

use super::catalog::{category_bit, Catalog};
use super::user::{hash_password, KeyPattern, Sanitize, User};

/// Why a rule was refused (Redis's texts, after "Error in ACL SETUSER
/// modifier '<rule>': ").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Unknown command or category name in ACL")]
    UnknownName,
    #[error("Syntax error")]
    Syntax,
    #[error("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")]
    KeyAfterAll,
    #[error("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")]
    ChannelAfterAll,
    #[error("The password you are trying to remove from the user does not exist")]
    NoSuchPassword,
    #[error("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")]
    BadHash,
    #[error("Allowing first-arg of a subcommand is not supported")]
    SubcommandFirstArg,
    #[error("Selectors are not supported by Citadel yet")]
    Selectors,
}

/// Applies one rule; on error the user may be half changed, so callers
/// work on a copy (ACL SETUSER is all or nothing).
pub fn apply(user: &mut User, catalog: &Catalog, rule: &[u8]) -> Result<(), RuleError> {
    let is = |word: &str| rule.eq_ignore_ascii_case(word.as_bytes());
    if rule.is_empty() {
        return Ok(());
    }
    if is("on") {
        user.enabled = true;
    } else if is("off") {
        user.enabled = false;
    } else if is("skip-sanitize-payload") {
        user.sanitize = Sanitize::Skip;
    } else if is("sanitize-payload") {
        user.sanitize = Sanitize::Sanitize;
    } else if is("nopass") {
        user.nopass = true;
        user.passwords.clear();
    } else if is("resetpass") {
        user.nopass = false;
        user.passwords.clear();
    } else if rule[0] == b'>' || rule[0] == b'#' {
        let hash = password_hash(rule)?;
        if !user.passwords.contains(&hash) {
            user.passwords.push(hash);
        }
        user.nopass = false;
    } else if rule[0] == b'<' || rule[0] == b'!' {
        let hash = password_hash(rule)?;
        let at = user.passwords.iter().position(|p| *p == hash);
        user.passwords.remove(at.ok_or(RuleError::NoSuchPassword)?);
    } else if rule[0] == b'(' && rule[rule.len() - 1] == b')' {
        return Err(RuleError::Selectors);
    } else if is("clearselectors") {
        // No selectors besides the root one: nothing to clear.
    } else if is("reset") {
        for step in [
            "resetpass",
            "resetkeys",
            "resetchannels",
            "off",
            "sanitize-payload",
            "-@all",
        ] {
            apply(user, catalog, step.as_bytes())?;
        }
    } else {
        selector_rule(user, catalog, rule)?;
    }
    Ok(())
}

/// `>pass` / `<pass` hash the password; `#hash` / `!hash` give the hash.
fn password_hash(rule: &[u8]) -> Result<String, RuleError> {
    let rest = &rule[1..];
    if rule[0] == b'>' || rule[0] == b'<' {
        return Ok(hash_password(rest));
    }
    let hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if rest.len() != 64 || !rest.iter().all(hex) {
        return Err(RuleError::BadHash);
    }
    Ok(String::from_utf8_lossy(rest).into_owned())
}

fn selector_rule(user: &mut User, catalog: &Catalog, rule: &[u8]) -> Result<(), RuleError> {
    let is = |word: &str| rule.eq_ignore_ascii_case(word.as_bytes());
    let s = &mut user.selector;
    if is("allkeys") || rule == b"~*" {
        s.all_keys = true;
        s.keys.clear();
    } else if is("resetkeys") {
        s.all_keys = false;
        s.keys.clear();
    } else if is("allchannels") || rule == b"&*" {
        s.all_channels = true;
        s.channels.clear();
    } else if is("resetchannels") {
        s.all_channels = false;
        s.channels.clear();
    } else if is("allcommands") || is("+@all") {
        s.set_all(catalog, true);
    } else if is("nocommands") || is("-@all") {
        s.set_all(catalog, false);
    } else if rule[0] == b'~' || rule[0] == b'%' {
        if s.all_keys {
            return Err(RuleError::KeyAfterAll);
        }
        let (read, write, pattern) = key_pattern(rule)?;
        if read && write && pattern == b"*" {
            s.all_keys = true;
            s.keys.clear();
        } else if let Some(p) = s.keys.iter_mut().find(|p| p.pattern == pattern) {
            p.read |= read;
            p.write |= write;
        } else {
            s.keys.push(KeyPattern {
                pattern: pattern.to_vec(),
                read,
                write,
            });
        }
    } else if rule[0] == b'&' {
        if s.all_channels {
            return Err(RuleError::ChannelAfterAll);
        }
        let pattern = rule[1..].to_vec();
        if !s.channels.contains(&pattern) {
            s.channels.push(pattern);
        }
    } else if rule.len() > 1 && (rule[0] == b'+' || rule[0] == b'-') && rule[1] == b'@' {
        let bit = category_bit(&rule[2..]).ok_or(RuleError::UnknownName)?;
        s.set_category(catalog, bit, rule[0] == b'+');
    } else if rule[0] == b'+' {
        allow_command(s, catalog, &rule[1..])?;
    } else if rule[0] == b'-' {
        let idx = catalog.find(&rule[1..]).ok_or(RuleError::UnknownName)?;
        s.change_perm(catalog, idx, false);
    } else {
        return Err(RuleError::Syntax);
    }
    Ok(())
}

/// `~p` (read and write), or `%R~p`, `%W~p`, `%RW~p`.
fn key_pattern(rule: &[u8]) -> Result<(bool, bool, &[u8]), RuleError> {
    if rule[0] == b'~' {
        return Ok((true, true, &rule[1..]));
    }
    let (mut read, mut write) = (false, false);
    let mut i = 1;
    loop {
        match rule.get(i).map(u8::to_ascii_uppercase) {
            Some(b'R') if !read => read = true,
            Some(b'W') if !write => write = true,
            Some(b'~') => return Ok((read, write, &rule[i + 1..])),
            _ => return Err(RuleError::Syntax),
        }
        i += 1;
    }
}

/// `+cmd`, `+cmd|sub`, or `+cmd|firstarg` for a command without subcommands.
fn allow_command(
    s: &mut super::user::Selector,
    catalog: &Catalog,
    name: &[u8],
) -> Result<(), RuleError> {
    let Some(bar) = name.iter().position(|&b| b == b'|') else {
        let idx = catalog.find(name).ok_or(RuleError::UnknownName)?;
        s.change_perm(catalog, idx, true);
        return Ok(());
    };
    let (parent, sub) = (&name[..bar], &name[bar + 1..]);
    let idx = catalog.find(parent).ok_or(RuleError::UnknownName)?;
    let entry = catalog.get(idx).ok_or(RuleError::UnknownName)?;
    if entry.parent.is_some() || sub.contains(&b'|') {
        return Err(RuleError::SubcommandFirstArg);
    }
    if sub.is_empty() {
        return Err(RuleError::Syntax);
    }
    if !entry.subs.is_empty() {
        let sub_idx = catalog.find(name).ok_or(RuleError::UnknownName)?;
        s.change_perm(catalog, sub_idx, true);
    } else {
        let args = s.first_args.entry(idx).or_default();
        if !args.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
            args.push(sub.to_vec());
        }
    }
    Ok(())
}

/// Whether a user name is one Redis accepts (no spaces nor NULs).
pub fn valid_name(name: &[u8]) -> bool {
    !name.iter().any(|&b| b == b' ' || b == 0)
}
