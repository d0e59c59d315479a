//! Which class a client is in under the current rules: its priority
//! (`overload-priority`) and its quota group (`overload-quotas`). Worked
//! out once per client and rules generation (a session keeps its
//! [`ClientClass`]; CLIENT SETNAME, SETINFO and AUTH make it stale).

use citadel_settings::overload::{
    parse_priority_rule, parse_quota_rule, ClientField, ClientPriority, PriorityRule, QuotaTarget,
};

use super::quota::Bucket;
use super::{Reason, Refusal};
use crate::clients::ClientShared;
use crate::glob::glob_match;

/// What the rules match a client by.
#[derive(Debug, Default)]
pub struct Identity {
    pub name: Vec<u8>,
    pub lib: Vec<u8>,
    pub user: Vec<u8>,
}

impl Identity {
    /// A connected client's: its names, and its ACL user once
    /// authenticated (none before).
    pub fn of(client: &ClientShared, authed: bool) -> Identity {
        let names = client.names();
        Identity {
            name: names.name.clone(),
            lib: names.lib_name.clone(),
            user: if authed {
                names.user().to_vec()
            } else {
                Vec::new()
            },
        }
    }

    fn field(&self, field: ClientField) -> &[u8] {
        match field {
            ClientField::Name => &self.name,
            ClientField::Lib => &self.lib,
            ClientField::User => &self.user,
        }
    }
}

/// A client's class under the rules of `generation`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientClass {
    /// 0: not worked out yet (or stale): the next command does.
    pub generation: u64,
    pub priority: ClientPriority,
    /// Index of its group's quota bucket.
    pub group: Option<usize>,
    /// The core admitted the client's next command from its framing
    /// (`ThreadOverload::shed_early`): its full check takes quota tokens
    /// but does not measure its delay a second time.
    pub admitted_at_frame: bool,
}

impl ClientClass {
    /// The client's identity changed: work the class out again.
    pub fn stale(&mut self) {
        self.generation = 0;
    }
}

struct Group {
    field: ClientField,
    glob: String,
    bucket: Bucket,
}

/// The parsed rules of one generation, shared by every core.
#[derive(Default)]
pub struct Rules {
    pub generation: u64,
    text: (Vec<String>, Vec<String>),
    priority: Vec<PriorityRule>,
    groups: Vec<Group>,
    prefixes: Vec<(String, Bucket)>,
}

impl Rules {
    /// Parses the settings' rules (already checked by the settings: a rule
    /// that does not parse is skipped).
    pub fn parse(generation: u64, priority: &[String], quotas: &[String]) -> Rules {
        let mut rules = Rules {
            generation,
            text: (priority.to_vec(), quotas.to_vec()),
            priority: priority
                .iter()
                .filter_map(|r| parse_priority_rule(r).ok())
                .collect(),
            ..Rules::default()
        };
        for q in quotas.iter().filter_map(|r| parse_quota_rule(r).ok()) {
            let bucket = Bucket::new(q.rate);
            match q.target {
                QuotaTarget::Clients(field, glob) => rules.groups.push(Group {
                    field,
                    glob,
                    bucket,
                }),
                QuotaTarget::Prefix(prefix) => rules.prefixes.push((prefix, bucket)),
            }
        }
        rules
    }

    pub fn has_prefixes(&self) -> bool {
        !self.prefixes.is_empty()
    }

    /// Whether any quota (client group or key prefix) is set.
    #[inline]
    pub fn has_quotas(&self) -> bool {
        !self.groups.is_empty() || !self.prefixes.is_empty()
    }

    pub fn same_text(&self, priority: &[String], quotas: &[String]) -> bool {
        self.generation > 1 && self.text.0 == priority && self.text.1 == quotas
    }

    pub fn classify(&self, who: &Identity) -> ClientClass {
        let matches = |field, glob: &str| glob_match(glob.as_bytes(), who.field(field));
        ClientClass {
            generation: self.generation,
            priority: self
                .priority
                .iter()
                .find(|r| matches(r.field, &r.glob))
                .map_or(ClientPriority::Normal, |r| r.priority),
            group: self.groups.iter().position(|g| matches(g.field, &g.glob)),
            admitted_at_frame: false,
        }
    }

    /// Takes a token from the client's group bucket and from the bucket of
    /// the first key's prefix, if any.
    pub fn take_tokens(&self, client: &ClientClass, key: Option<&[u8]>) -> Result<(), Refusal> {
        if let Some(group) = client.group.and_then(|g| self.groups.get(g)) {
            if !group.bucket.take() {
                let what = format!(
                    "client group {}:{} over {}/s, retry later",
                    field_name(group.field),
                    group.glob,
                    group.bucket.rate
                );
                return Err(Refusal::new(Reason::ClientQuota, what));
            }
        }
        let Some(key) = key.filter(|_| !self.prefixes.is_empty()) else {
            return Ok(());
        };
        for (prefix, bucket) in &self.prefixes {
            if key.starts_with(prefix.as_bytes()) && !bucket.take() {
                let what = format!("key prefix {prefix} over {}/s, retry later", bucket.rate);
                return Err(Refusal::new(Reason::PrefixQuota, what));
            }
        }
        Ok(())
    }
}

fn field_name(field: ClientField) -> &'static str {
    match field {
        ClientField::Name => "name",
        ClientField::Lib => "lib",
        ClientField::User => "user",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_rule_decides() {
        let rules = Rules::parse(
            2,
            &["name:batch-*=low".into(), "name:*=high".into()],
            &["name:batch-*=1".into(), "prefix:s:=1".into()],
        );
        let batch = Identity {
            name: b"batch-7".to_vec(),
            ..Identity::default()
        };
        let class = rules.classify(&batch);
        assert_eq!(class.priority, ClientPriority::Low);
        assert_eq!(class.group, Some(0));
        // As in Redis's glob, `*` needs a byte: a client without a name
        // matches no name rule.
        let named = Identity {
            name: b"web-1".to_vec(),
            ..Identity::default()
        };
        assert_eq!(rules.classify(&named).priority, ClientPriority::High);
        assert_eq!(
            rules.classify(&Identity::default()).priority,
            ClientPriority::Normal
        );
        assert!(rules.take_tokens(&class, None).is_ok());
        let refused = rules.take_tokens(&class, None).unwrap_err();
        assert_eq!(refused.reason, Reason::ClientQuota);
        assert!(refused
            .text
            .starts_with("OVERLOAD quota client group name:batch-*"));
        let other = rules.classify(&Identity::default());
        assert!(rules.take_tokens(&other, Some(b"s:1")).is_ok());
        assert!(rules.take_tokens(&other, Some(b"s:2")).is_err());
        assert!(rules.take_tokens(&other, Some(b"t:2")).is_ok());
    }
}
