//! `[[keyspace]]` tables: which keys are loaded through which loader
//! plugin (read-through), and how long the results live.

use crate::setting::positive;

crate::settings_table! {
    "Read-through: a GET/MGET/GETEX miss of a key under `prefix` is loaded by \
     the loader plugin (a [[plugin]] that answers LoadRequest, e.g. \
     plugins/loader-postgres) while the client waits parked; concurrent misses \
     of one key (any thread) share one load. Keyspaces that share a loader share \
     its limit and breaker (the first keyspace's values count). Example: \
     deploy/examples/postgres-loader.toml. None by default.",
    Some("keyspace");

    PREFIX: String = {
        name: "prefix",
        example: "user:",
        help: "the longest matching prefix wins",
        required: true,
    }
    LOADER: String = {
        name: "loader",
        example: "pg",
        help: "a configured [[plugin]]",
        required: true,
    }
    TTL_MS: u64 = {
        name: "ttl-ms",
        default: "300000",
        help: "TTL of a loaded value when the loader sends none",
        check: positive,
    }
    TTL_JITTER_MS: Option<u64> = {
        name: "ttl-jitter-ms",
        example: "30000",
        help: "up to this much is added at random (default ttl-ms/10)",
    }
    NEGATIVE_TTL_MS: u64 = {
        name: "negative-ttl-ms",
        default: "5000",
        help: "how long \"no such row\" is remembered (0: not cached)",
    }
    STALE_MS: u64 = {
        name: "stale-ms",
        default: "0",
        help: "stale window: past its TTL a value is reloaded; if the load fails it is \
               served for this long (0: never)",
    }
    MAX_LOADS: u64 = {
        name: "max-loads",
        default: "1024",
        help: "loads in flight toward the loader; more fail at once",
        check: positive,
    }
    BREAKER_FAILURES: u32 = {
        name: "breaker-failures",
        default: "10",
        help: "consecutive unavailable/timeout loads open the breaker:",
        check: positive,
    }
    BREAKER_OPEN_MS: u64 = {
        name: "breaker-open-ms",
        default: "1000",
        help: "misses then fail fast (or go stale), then one trial",
        check: positive,
    }
}
