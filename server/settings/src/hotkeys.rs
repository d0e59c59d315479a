//! Hot-key detection and the per-key write rate limit (top-level keys, a
//! part of the server table): how often keyed commands are sampled into
//! each core's ring-bucket counters, the window their counts cover, how
//! many candidates each core keeps, and the most writes a second one key
//! may take before writes to it are shed with `-OVERLOAD key ...`.

crate::settings_part! {
    first: crate::cluster::SETTINGS.len()
        + crate::metrics::SETTINGS.len()
        + crate::overload::SETTINGS.len();

    HOTKEYS_SAMPLE: u32 = {
        name: "hotkeys-sample",
        value_name: "N",
        default: "8",
        help: "Count one keyed command in N into the hot-key counters (0: hot-key detection off)",
        doc: "Hot-key detection samples one keyed command in N on each core (a countdown: \
              the other N-1 cost one decrement) and counts its keys into that core's \
              ring-bucket counters (key hash -> one counter per time slice, summed over \
              hotkeys-window). Counts and rates HOTKEYS and OBJECT FREQ report are scaled \
              back by N. 0 turns detection off (HOTKEYS answers an empty list). CONFIG SET \
              changes it at run time.",
        live: true,
    }
    HOTKEYS_WINDOW: u32 = {
        name: "hotkeys-window",
        value_name: "SECONDS",
        default: "10",
        help: "The window hot-key rates are counted over, in seconds (10 slices of a ring)",
        doc: "The window, in seconds, hot-key counts are summed over: a ring of 10 time \
              slices, the oldest dropped as a new one starts, so a key that cooled down \
              leaves the list within one window. CONFIG SET changes it at run time (the \
              counts restart).",
        check: crate::setting::positive,
        live: true,
    }
    HOTKEYS_TOP: u32 = {
        name: "hotkeys-top",
        value_name: "K",
        default: "32",
        help: "How many hot-key candidates each core keeps (HOTKEYS merges them on read), 1-256",
        doc: "How many candidates each core keeps in its top list (the keys whose windowed \
              counts are highest); HOTKEYS and INFO hotkeys merge the cores' lists and \
              re-count each candidate over every core. 1-256. CONFIG SET changes it at run \
              time (each core's list follows at its next sample).",
        check: |k| if (1..=256).contains(k) { Ok(()) } else { Err("must be 1-256".into()) },
        live: true,
    }
    HOTKEYS_WRITE_LIMIT: u64 = {
        name: "hotkeys-write-limit",
        value_name: "WRITES_PER_SEC",
        default: "0",
        help: "Most writes a second to one key; more are shed with -OVERLOAD key (0: no limit)",
        doc: "A per-key write rate limit: a write command (SET, INCR, LPUSH ...) to a key \
              that already took this many writes in the current second, over all cores, is \
              refused with \"-OVERLOAD key write rate over N/s for this key, retry later\" \
              and not executed (an RPC write operation gets the Overloaded code with the \
              same text). Keys are counted in a shared hash-indexed table (two rows, \
              the smaller count wins, so a colliding key is rarely limited by another's \
              writes). 0 (the default) turns it off and costs one relaxed load per write. \
              Commands inside MULTI/EXEC and scripts are not limited. CONFIG SET changes it \
              at run time.",
        live: true,
    }
}
