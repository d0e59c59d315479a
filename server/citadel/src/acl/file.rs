//! The ACL file (`aclfile`, Redis's `users.acl` format): one
//! `user <name> <rules...>` line per user, as ACL LIST prints them;
//! empty lines and lines starting with `#` are skipped.

use std::collections::BTreeMap;
use std::path::Path;

use super::catalog::Catalog;
use super::describe;
use super::rules;
use super::user::User;

/// The file's users, or every problem found (Redis's error text: each
/// `<file>:<line>: <problem>. `), in which case nothing loads.
pub fn parse(
    path: &Path,
    text: &str,
    catalog: &Catalog,
) -> Result<BTreeMap<Vec<u8>, User>, String> {
    let mut users = BTreeMap::new();
    let mut errors = String::new();
    let file = path.display();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let n = n + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[0] != "user" || words.len() < 2 {
            errors.push_str(&format!(
                "{file}:{n}: line should start with user keyword. "
            ));
            continue;
        }
        let name = words[1].as_bytes();
        if !rules::valid_name(name) {
            errors.push_str(&format!(
                "{file}:{n}: Usernames can't contain spaces or null characters. "
            ));
            continue;
        }
        if users.contains_key(name) {
            errors.push_str(&format!(
                "{file}:{n}: Duplicate user '{}' found. ",
                words[1]
            ));
            continue;
        }
        let mut user = User::new(name, catalog);
        for rule in &words[2..] {
            if let Err(e) = rules::apply(&mut user, catalog, rule.as_bytes()) {
                errors.push_str(&format!(
                    "{file}:{n}: Error in applying operation '{rule}': {e}. "
                ));
            }
        }
        users.insert(name.to_vec(), user);
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        Err(errors)
    }
}

/// The file's text for `users` (ACL SAVE): ACL LIST's lines.
pub fn render(users: &[std::sync::Arc<User>], catalog: &Catalog) -> Vec<u8> {
    let mut out = Vec::new();
    for u in users {
        out.extend_from_slice(b"user ");
        out.extend_from_slice(&u.name);
        out.push(b' ');
        out.extend_from_slice(&describe::rules(u, catalog));
        out.push(b'\n');
    }
    out
}

/// Writes the file whole or not at all: a temporary file beside it,
/// renamed over it.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}
