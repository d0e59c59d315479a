//! Users as text, as Redis 7.0 writes them (ACL LIST, ACL GETUSER, the
//! ACL file): flags, password hashes, key and channel patterns, and the
//! command rules, rebuilt from the permission bits by Redis's best-fit
//! algorithm (categories first, then single commands).

use super::catalog::{Catalog, CATEGORIES};
use super::user::{KeyPattern, Sanitize, Selector, User};

/// The user's flags, in Redis's order.
pub fn flags(user: &User) -> Vec<&'static str> {
    let mut out = vec![if user.enabled { "on" } else { "off" }];
    if user.nopass {
        out.push("nopass");
    }
    match user.sanitize {
        Sanitize::Skip => out.push("skip-sanitize-payload"),
        Sanitize::Sanitize => out.push("sanitize-payload"),
        Sanitize::Unset => {}
    }
    out
}

fn pattern_text(out: &mut Vec<u8>, p: &KeyPattern) {
    match (p.read, p.write) {
        (true, false) => out.extend_from_slice(b"%R~"),
        (false, true) => out.extend_from_slice(b"%W~"),
        _ => out.push(b'~'),
    }
    out.extend_from_slice(&p.pattern);
}

/// GETUSER's `keys`: the patterns joined by spaces (`~*` for allkeys).
pub fn keys(s: &Selector) -> Vec<u8> {
    if s.all_keys {
        return b"~*".to_vec();
    }
    let mut out = Vec::new();
    for (i, p) in s.keys.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        pattern_text(&mut out, p);
    }
    out
}

/// GETUSER's `channels`: the patterns joined by spaces (`&*` for all).
pub fn channels(s: &Selector) -> Vec<u8> {
    if s.all_channels {
        return b"&*".to_vec();
    }
    let mut out = Vec::new();
    for (i, p) in s.channels.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.push(b'&');
        out.extend_from_slice(p);
    }
    out
}

/// One `ACL LIST` line without its `user <name> ` prefix.
pub fn rules(user: &User, catalog: &Catalog) -> Vec<u8> {
    let mut out = Vec::new();
    for f in flags(user) {
        out.extend_from_slice(f.as_bytes());
        out.push(b' ');
    }
    for p in &user.passwords {
        out.push(b'#');
        out.extend_from_slice(p.as_bytes());
        out.push(b' ');
    }
    let s = &user.selector;
    if s.all_keys {
        out.extend_from_slice(b"~* ");
    } else {
        for p in &s.keys {
            pattern_text(&mut out, p);
            out.push(b' ');
        }
    }
    if s.all_channels {
        out.extend_from_slice(b"&* ");
    } else {
        out.extend_from_slice(b"resetchannels ");
        for p in &s.channels {
            out.push(b'&');
            out.extend_from_slice(p);
            out.push(b' ');
        }
    }
    out.extend_from_slice(command_rules(s, catalog).as_bytes());
    out
}

/// The command rules: `+@all` or `-@all`, then the categories that best
/// fit the bits left to explain, then single commands and first args.
pub fn command_rules(user: &Selector, catalog: &Catalog) -> String {
    let additive = !user.future;
    let mut rules = String::from(if additive { "-@all " } else { "+@all " });
    let mut fake = Selector::default();
    fake.set_all(catalog, !additive);
    // The bits still to explain: applying a category's inverse to a copy
    // of the user's bits takes it out of later counts.
    let mut temp = user.clone();
    let mut applied = [false; CATEGORIES.len()];
    loop {
        let mut best = None;
        let (mut min_diff, mut max_same) = (usize::MAX, 0);
        for (j, _) in CATEGORIES.iter().enumerate() {
            if applied[j] {
                continue;
            }
            let (on, off) = count(&temp, catalog, 1 << j);
            let (diff, same) = if additive { (off, on) } else { (on, off) };
            if same > diff && (diff < min_diff || (diff == min_diff && same > max_same)) {
                best = Some(j);
                min_diff = diff;
                max_same = same;
            }
        }
        let Some(j) = best else { break };
        fake.set_category(catalog, 1 << j, additive);
        temp.set_category(catalog, 1 << j, !additive);
        rules.push_str(if additive { "+@" } else { "-@" });
        rules.push_str(CATEGORIES[j]);
        rules.push(' ');
        applied[j] = true;
    }
    for (idx, entry) in catalog.walk() {
        let (want, have) = (user.bit(idx), fake.bit(idx));
        if want != have {
            rules.push(if want { '+' } else { '-' });
            rules.push_str(entry.name);
            rules.push(' ');
            fake.change_perm(catalog, idx, want);
        }
        if !want {
            for arg in user.first_args.get(&idx).into_iter().flatten() {
                rules.push('+');
                rules.push_str(entry.name);
                rules.push('|');
                rules.push_str(&String::from_utf8_lossy(arg));
                rules.push(' ');
            }
        }
    }
    rules.pop();
    rules
}

/// Commands of a category allowed (on) and denied (off) by `s`.
fn count(s: &Selector, catalog: &Catalog, bit: u32) -> (usize, usize) {
    let (mut on, mut off) = (0, 0);
    for (idx, e) in catalog.walk() {
        if e.categories & bit != 0 {
            if s.bit(idx) {
                on += 1;
            } else {
                off += 1;
            }
        }
    }
    (on, off)
}
