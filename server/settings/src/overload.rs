//! Overload protection's settings (top-level keys, a part of the server
//! table): the connection layer's per-address limit and accept rate, each
//! core's queueing-delay target, client priority rules and token-bucket
//! quotas. Every one is live (CONFIG SET). The rule syntaxes are parsed
//! here, once, so a bad rule is refused by CONFIG SET and at start-up.

crate::settings_part! {
    first: crate::cluster::SETTINGS.len() + crate::metrics::SETTINGS.len();

    MAXCLIENTS_PER_ADDRESS: usize = {
        name: "maxclients-per-address",
        value_name: "N",
        default: "0",
        help: "Most concurrent connections from one source IP address; 0 for no limit",
        doc: "Most concurrent client connections from one source IP address (Unix socket \
              clients are not counted). One more gets \"-OVERLOAD connection ...\" and is \
              closed. 0: no limit.",
        live: true,
    }
    ACCEPT_RATE: u64 = {
        name: "accept-rate",
        value_name: "PER_SECOND",
        default: "0",
        help: "Most new connections accepted per second (all addresses); 0 for no limit",
        doc: "Most new connections accepted per second across all threads (a token \
              bucket with a tenth of a second of burst). A connection past the rate gets \
              \"-OVERLOAD connection ...\" and is closed. 0: no limit.",
        live: true,
    }
    OVERLOAD_DELAY_TARGET_US: u64 = {
        name: "overload-delay-target-us",
        value_name: "MICROSECONDS",
        default: "5000",
        help: "Queueing delay a core tolerates before it sheds new work by priority; 0: never shed",
        doc: "Each core's admission control: when the queueing delay of its requests (how \
              long the oldest unserved input can have waited) stays above this target for \
              a control interval, the core sheds new work by priority (lowest first) with \
              \"-OVERLOAD core ...\" until the delay is back under it. Health and admin \
              commands are never shed. 0 turns core admission off. See ARCHITECTURE.md, \
              \"Overload protection\".",
        live: true,
    }
    OVERLOAD_PRIORITY: Vec<String> = {
        name: "overload-priority",
        value_name: "RULE ...",
        help: "Client priority rules: name:GLOB=, lib:GLOB= or user:GLOB= low|normal|high",
        doc: "Which clients are shed first under overload. Each rule is \
              FIELD:GLOB=PRIORITY where FIELD is name (CLIENT SETNAME / HELLO SETNAME), \
              lib (CLIENT SETINFO lib-name) or user (the AUTH user) and PRIORITY is low, \
              normal or high; the first matching rule wins, others are normal. An RPC \
              request with a non-zero priority field uses it instead (1-63 low, 64-191 \
              normal, 192-255 high).",
        example: "name:batch-*=low name:dashboard=high",
        live: true,
        check: |rules| check_all(rules, parse_priority_rule),
    }
    OVERLOAD_QUOTAS: Vec<String> = {
        name: "overload-quotas",
        value_name: "RULE ...",
        help: "Token-bucket quotas (commands per second): name:GLOB=, lib:GLOB=, user:GLOB= or prefix:KEYPREFIX=",
        doc: "Rate limits in commands per second, each a token bucket with a twentieth of \
              a second of burst. name:/lib:/user:GLOB=RATE: every client matching the glob \
              shares one bucket (a client group; its first matching rule). \
              prefix:PREFIX=RATE: every command whose first key starts with PREFIX shares \
              one bucket. A command over a quota gets \"-OVERLOAD quota ...\". Health and \
              admin commands are never limited.",
        example: "name:batch-*=1000 prefix:session:=5000",
        live: true,
        check: |rules| check_all(rules, parse_quota_rule),
    }
}

/// What a client rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientField {
    /// The client name (CLIENT SETNAME, HELLO SETNAME).
    Name,
    /// CLIENT SETINFO lib-name.
    Lib,
    /// The authenticated user.
    User,
}

/// A client's priority under overload (what its commands' rank starts from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum ClientPriority {
    Low,
    #[default]
    Normal,
    High,
}

/// `FIELD:GLOB=PRIORITY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityRule {
    pub field: ClientField,
    pub glob: String,
    pub priority: ClientPriority,
}

/// What a quota counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaTarget {
    /// Every client whose field matches the glob (one shared bucket).
    Clients(ClientField, String),
    /// Every command whose first key starts with these bytes.
    Prefix(String),
}

/// `TARGET=RATE`: `rate` commands per second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRule {
    pub target: QuotaTarget,
    pub rate: u64,
}

fn check_all<T>(rules: &[String], parse: fn(&str) -> Result<T, String>) -> Result<(), String> {
    rules.iter().try_for_each(|r| parse(r).map(drop))
}

/// Splits `FIELD:PATTERN=VALUE` (the value after the last '=').
fn split_rule(text: &str) -> Result<(&str, &str, &str), String> {
    let bad = || format!("{text:?}: expected FIELD:PATTERN=VALUE");
    let (lhs, value) = text.rsplit_once('=').ok_or_else(bad)?;
    let (field, pattern) = lhs.split_once(':').ok_or_else(bad)?;
    if pattern.is_empty() || value.is_empty() {
        return Err(bad());
    }
    Ok((field, pattern, value))
}

fn client_field(field: &str, rule: &str) -> Result<ClientField, String> {
    match field {
        "name" => Ok(ClientField::Name),
        "lib" => Ok(ClientField::Lib),
        "user" => Ok(ClientField::User),
        _ => Err(format!("{rule:?}: the field must be name, lib or user")),
    }
}

/// Parses one `overload-priority` rule.
pub fn parse_priority_rule(text: &str) -> Result<PriorityRule, String> {
    let (field, glob, value) = split_rule(text)?;
    let priority = match value {
        "low" => ClientPriority::Low,
        "normal" => ClientPriority::Normal,
        "high" => ClientPriority::High,
        _ => {
            return Err(format!(
                "{text:?}: the priority must be low, normal or high"
            ))
        }
    };
    Ok(PriorityRule {
        field: client_field(field, text)?,
        glob: glob.to_string(),
        priority,
    })
}

/// Parses one `overload-quotas` rule.
pub fn parse_quota_rule(text: &str) -> Result<QuotaRule, String> {
    let (field, pattern, value) = split_rule(text)?;
    let rate = value
        .parse::<u64>()
        .ok()
        .filter(|r| *r > 0)
        .ok_or_else(|| format!("{text:?}: the rate must be a positive integer"))?;
    let target = match field {
        "prefix" => QuotaTarget::Prefix(pattern.to_string()),
        _ => QuotaTarget::Clients(client_field(field, text)?, pattern.to_string()),
    };
    Ok(QuotaRule { target, rate })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_bad_ones_say_why() {
        let r = parse_priority_rule("name:batch-*=low").unwrap();
        assert_eq!(
            (r.field, r.glob.as_str(), r.priority),
            (ClientField::Name, "batch-*", ClientPriority::Low)
        );
        let q = parse_quota_rule("prefix:session:=500").unwrap();
        assert_eq!(q.target, QuotaTarget::Prefix("session:".into()));
        assert_eq!(q.rate, 500);
        assert!(parse_priority_rule("name:x=urgent").is_err());
        assert!(parse_priority_rule("host:x=low").is_err());
        assert!(parse_quota_rule("name:x=0").is_err());
        assert!(parse_quota_rule("nonsense").is_err());
    }
}
