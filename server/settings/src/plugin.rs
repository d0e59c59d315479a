//! `[[plugin]]` tables: processes the server starts, pins, watches and
//! restarts, called through shared-memory rings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::instances::InstanceRange;
use crate::plugin_placement::Placement;
use crate::plugin_versions::{Balance, PluginVersions, RollbackRule};
use crate::setting::{identifier, positive};
use crate::size::Size;
use crate::value::Cores;

crate::settings_table! {
    "Plugins: processes the server starts, pins, watches and restarts, called \
     through shared-memory rings (see plugins/README.md). One [[plugin]] table \
     per plugin; none by default. Example: deploy/examples/plugins.toml.",
    Some("plugin");

    NAME: String = {
        name: "name",
        example: "echo",
        help: "PLUGIN CALL <name> <payload>; letters, digits, - and _",
        required: true,
        check: identifier,
    }
    EXEC: PathBuf = {
        name: "exec",
        example: "/usr/local/bin/echo",
        help: "a path, or a name looked up in PATH (checked at start-up); required unless \
               `versions` is given",
    }
    PLACEMENT: Placement = {
        name: "placement",
        default: "process",
        help: "\"process\": exec is an executable, each instance a process (isolated, \
               restarted after a crash); \"inline\": exec (and each version's) is a module \
               built with the SDK's export_inline!, each instance a pinned thread inside \
               the server (no process hop; a crash in it takes the server down)",
    }
    VERSIONS: PluginVersions = {
        name: "versions",
        example: "v1=echo:90 v2=echo-next:10",
        help: "gray release, instead of exec: [{ name = \"v1\", exec = \"...\", weight = \
               90 }, ...] (args, env per version optional) or \"NAME=EXEC:WEIGHT ...\"; each \
               version runs `instances` processes; calls split by weight (sticky by key when \
               the call names one); PLUGIN WEIGHT / PROMOTE / ROLLBACK change it live",
    }
    BALANCE: Balance = {
        name: "balance",
        default: "latency",
        help: "instance choice within a version: \"latency\" (power of two choices over \
               EWMA latency x (in flight + 1)) or \"round-robin\"",
    }
    ROLLBACK: Option<RollbackRule> = {
        name: "rollback",
        example: "error_rate=0.05,p99_ms=50",
        help: "automatic rollback, { error_rate = 0.05, p99_ms = 50, window_s = 10 } \
               (window_s defaults to 10): a version other than the baseline (the \
               heaviest) that breaks a limit over the window (at least 20 calls) loses its \
               weight to the baseline",
    }
    ARGS: Vec<String> = {
        name: "args",
        help: "its arguments",
    }
    ENV: BTreeMap<String, String> = {
        name: "env",
        example: "RUST_LOG=info",
        help: "extra environment (the ring handshake is added)",
    }
    CORES: Cores = {
        name: "cores",
        default: "auto",
        help: "[2, 3]: exactly these CPUs; \"auto\": `instances` CPUs from the end of the \
               CPU set; \"none\": not pinned. Server threads run on the CPUs left (at least \
               one); the plan is logged at start and shown by INFO plugins.",
    }
    INSTANCES: InstanceRange = {
        name: "instances",
        default: "1",
        help: "processes per version; each serves every server thread's rings. \"MIN..MAX\" \
               (e.g. \"1..4\"): elastic, the supervisor starts instances while calls queue \
               and stops them while idle (a single-version plugin outside pipelines)",
    }
    SCALE_DELAY_TARGET_US: u64 = {
        name: "scale-delay-target-us",
        default: "2000",
        help: "elastic: a sample counts as busy when a request ring was found full or a new \
               call would queue longer than this (calls waiting x mean handler time)",
        check: positive,
    }
    SCALE_UP_WINDOW_MS: u64 = {
        name: "scale-up-window-ms",
        default: "1000",
        help: "elastic: one instance more when over half of the samples (every 100 ms) of \
               this window were busy",
        check: positive,
    }
    SCALE_DOWN_WINDOW_MS: u64 = {
        name: "scale-down-window-ms",
        default: "10000",
        help: "elastic: one instance fewer when every sample of this window was quiet (the \
               others would have been at most half busy)",
        check: positive,
    }
    SCALE_COOLDOWN_MS: u64 = {
        name: "scale-cooldown-ms",
        default: "2000",
        help: "elastic: at least this long between two changes of the instance count",
        check: positive,
    }
    MAX_INFLIGHT: u64 = {
        name: "max-inflight",
        default: "1024",
        help: "calls awaiting a reply (all threads); more fail at once",
        check: positive,
    }
    TIMEOUT_MS: u64 = {
        name: "timeout-ms",
        default: "5000",
        help: "a call unanswered this long gets a timeout error",
        check: positive,
    }
    RESTART_BACKOFF_MS: u64 = {
        name: "restart-backoff-ms",
        default: "100",
        help: "delay before restarting a crashed plugin, doubled per crash",
        check: positive,
    }
    RESTART_BACKOFF_MAX_MS: u64 = {
        name: "restart-backoff-max-ms",
        default: "5000",
        help: "... up to this (reset after 10 s of uptime)",
        check: positive,
    }
    MAX_ATTEMPTS: u16 = {
        name: "max-attempts",
        default: "3",
        help: "deliveries before a request is skipped as poison",
        check: positive,
    }
    RING_CAPACITY: Size = {
        name: "ring-capacity",
        default: "1mb",
        help: "bytes per ring, a power of two from 4kb; one request ring and one reply \
               ring per (server thread, instance)",
        check: |c| {
            if !c.0.is_power_of_two() || !(4096..(1 << 32)).contains(&c.0) {
                return Err(format!("ring-capacity {} must be a power of two from 4kb to 2gb", c.0));
            }
            Ok(())
        },
    }
    STOP_TIMEOUT_MS: u64 = {
        name: "stop-timeout-ms",
        default: "5000",
        help: "on reload or shutdown: SIGTERM, then SIGKILL after this; an inline \
               plugin's thread not returned by then (a stuck handler) is left running \
               detached, taking no calls: the calls queued to it that it never took are \
               answered at once with an error (retry); those it took are answered if it \
               returns, else at the plugin's timeout-ms",
        check: positive,
    }
}
