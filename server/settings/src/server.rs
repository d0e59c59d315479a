//! The top-level settings of `citadel` (flags, TOML keys, CONFIG).

use std::net::IpAddr;
use std::path::PathBuf;

use crate::eviction::MaxmemoryPolicy;
use crate::numa::{NumaMemory, NumaNode};
use crate::setting::positive;
use crate::size::Size;
use crate::value::DebugCommand;

/// The cache engine allows at most this many writer handles, one per thread.
pub const MAX_THREADS: usize = 64;

crate::settings_table! {
    "The server's own settings: the top level of the config file.", None,
    parts: [
        crate::cluster::SETTINGS,
        crate::metrics::SETTINGS,
        crate::overload::SETTINGS,
        crate::hotkeys::SETTINGS,
    ];

    PORT: u16 = {
        name: "port",
        value_name: "PORT",
        default: "6379",
        help: "TCP port to listen on",
        doc: "TCP port to listen on.",
        check: |p| if *p == 0 { Err("must be 1-65535".into()) } else { Ok(()) },
    }
    BIND: IpAddr = {
        name: "bind",
        value_name: "ADDR",
        default: "127.0.0.1",
        help: "Address to listen on; a non-loopback address needs --requirepass",
        doc: "Address to listen on. Anything other than a loopback address requires \
              requirepass to be set, or citadel refuses to start.",
    }
    UNIXSOCKET: Option<PathBuf> = {
        name: "unixsocket",
        value_name: "PATH",
        help: "Also listen on this Unix domain socket (redis-cli -s PATH)",
        doc: "A Unix domain socket to serve RESP on as well, as Redis's unixsocket \
              (redis-cli -s PATH, redis-py unix_socket_path). A stale socket file is \
              replaced; the file is removed at exit. Default: none.",
        example: "/run/citadel/citadel.sock",
    }
    UNIXSOCKETPERM: u32 = {
        name: "unixsocketperm",
        value_name: "OCTAL",
        default: "0",
        help: "Permissions of the Unix socket, in octal (e.g. 700); 0 leaves them to the umask",
        doc: "File mode of the Unix socket in octal, as Redis's unixsocketperm (700: \
              only this user). 0 leaves it to the umask.",
        check: |p| {
            let octal = p.to_string().chars().all(|c| c <= '7');
            if !octal || *p > 7777 {
                return Err("must be an octal mode such as 700 or 770".into());
            }
            Ok(())
        },
    }
    RPC_PORT: Option<u16> = {
        name: "rpc-port",
        value_name: "PORT",
        help: "TCP port of the FlatBuffers RPC front door, 0 for none [default: port + 1000]",
        doc: "TCP port of the FlatBuffers RPC front door, on the same bind address as \
              RESP: typed requests, many in flight per connection, answered out of \
              order (see proto/src/rpc). 0 turns it off. Default: the RESP port + 1000 \
              (7379 beside 6379), none when that is past 65535.",
        example: "7379",
    }
    RPC_UNIXSOCKET: Option<PathBuf> = {
        name: "rpc-unixsocket",
        value_name: "PATH",
        help: "Also serve RPC on this Unix domain socket",
        doc: "A Unix domain socket serving the FlatBuffers RPC protocol (mode from \
              unixsocketperm). A stale socket file is replaced; the file is removed at \
              exit. Default: none.",
        example: "/run/citadel/rpc.sock",
    }
    SHM_SOCKET: Option<PathBuf> = {
        name: "shm-socket",
        value_name: "PATH",
        help: "Handshake socket of the shared-memory RPC transport for local clients",
        doc: "Local clients connect to this Unix socket to get a pair of shared-memory \
              rings (a memfd and two eventfds passed with SCM_RIGHTS) and then exchange \
              RPC frames through them, with no system call per request while both \
              sides are busy. The client keeps the socket open; when it closes, its \
              rings are reclaimed. Default: none.",
        example: "/run/citadel/shm.sock",
    }
    DISCOVERY_DIR: Option<PathBuf> = {
        name: "discovery-dir",
        value_name: "DIR",
        help: "Where this server's discovery record goes [default: $XDG_RUNTIME_DIR/citadel, /run/citadel as root, else /tmp/citadel-<uid>]",
        doc: "Registry-less discovery: at start the server writes a record (name, pid, \
              version, TCP, RPC and Unix socket addresses, start time) into this directory, \
              atomically, and removes it at a clean exit; local clients list and watch \
              the directory (a record whose process is gone is dead). Default: \
              $XDG_RUNTIME_DIR/citadel, /run/citadel when run as root, else \
              /tmp/citadel-<uid>.",
        example: "/run/citadel",
    }
    SERVER_NAME: Option<String> = {
        name: "server-name",
        value_name: "NAME",
        help: "This server's name in its discovery record [default: citadel-<port>]",
        doc: "The name clients find this server by in the discovery directory (its \
              record file is <name>.server). Default: citadel-<port>.",
        example: "cache-a",
    }
    THREADS: Option<usize> = {
        name: "threads",
        value_name: "N",
        help: "Server threads, each pinned to one CPU [default: one per CPU this process may use]",
        doc: "Server threads, each pinned to one CPU. Default: one per CPU this process \
              may run on (its affinity mask, so taskset and cgroup cpusets are honoured). \
              At most 64.",
        example: "4",
        check: |n| match n {
            Some(n) if *n == 0 || *n > MAX_THREADS => Err(format!("must be 1-{MAX_THREADS}")),
            _ => Ok(()),
        },
    }
    NUMA_NODE: NumaNode = {
        name: "numa-node",
        value_name: "N|auto|none",
        default: "none",
        help: "NUMA node for the server threads, plugins and cache memory: a node number, auto (most allowed CPUs) or none",
        doc: "Runs the server on one NUMA node: its threads (and the plugins) on the \
              node's CPUs (those of /sys/devices/system/node/node<N>/cpulist that this \
              process may use), and the cache mapping bound to the node's memory \
              (mbind, see numa-memory). auto picks the node with the most allowed CPUs; \
              none (the default) places nothing. A node that does not exist, or has \
              none of the allowed CPUs, stops the start with an error. The plan (thread \
              -> CPU -> node, and where the cache memory is bound) is logged at start.",
    }
    NUMA_MEMORY: NumaMemory = {
        name: "numa-memory",
        value_name: "bind|preferred",
        default: "bind",
        help: "With numa-node: bind the cache to the node's memory strictly, or only prefer it",
        doc: "How the cache mapping is tied to the numa-node's memory: bind (MPOL_BIND: \
              only that node; a cache larger than the node's free memory fails when \
              written) or preferred (MPOL_PREFERRED: that node while it has room, then \
              others). Ignored when numa-node is none.",
    }
    MAXMEMORY: Size = {
        name: "maxmemory",
        value_name: "SIZE",
        default: "1gb",
        help: "Size of the cache file, e.g. 64mb, 1gb; lower at run time to cap the memory in use",
        doc: "Size of the cache file (header, index and values together), fixed when \
              the file is made. Lower at run time (CONFIG SET maxmemory) to cap the \
              memory in use, used_memory: the file's index plus the 1 MiB segments \
              of values in use. Writes then evict (or, under noeviction, fail with \
              -OOM) to stay under it, and each thread evicts up to 8 segments every \
              ~100 ms while more are in use. 0 lifts the cap, as Redis's 0 means no \
              limit. It cannot rise above the file's size while the file is mapped. \
              A start with a smaller maxmemory than the existing file was made for \
              keeps the file and its keys under the same cap; a larger one needs \
              --fresh.",
        live: true,
        check: positive,
    }
    MAXMEMORY_POLICY: MaxmemoryPolicy = {
        name: "maxmemory-policy",
        value_name: "POLICY",
        default: "allkeys-lfu",
        help: "What goes when the cache is full: allkeys-lfu|lru|random, volatile-lfu|lru|random|ttl, noeviction",
        doc: "What is dropped when the cache is full, with Redis's names. allkeys-lfu, \
              allkeys-lru and allkeys-random: any key (segment eviction keeps keys read \
              since they were written: an approximate LFU, which also stands for LRU \
              and random). volatile-lfu, volatile-lru, volatile-random and volatile-ttl: \
              only keys with a TTL (volatile-ttl takes the soonest to expire first); \
              keys without one are kept. noeviction: nothing. When no room can be made \
              a write gets \"-OOM command not allowed when used memory > 'maxmemory'.\"; \
              reads, DEL and other commands that free memory still run, and expired \
              keys are reclaimed under every policy. CONFIG SET changes it at run time.",
        live: true,
    }
    CACHE_FILE: Option<PathBuf> = {
        name: "cache-file",
        value_name: "PATH",
        help: "Path of the cache file [default: /dev/shm/citadel-<port>.cache]",
        doc: "The memory-mapped cache file. Default: /dev/shm/citadel-<port>.cache. \
              Keys survive restarts (and crashes) as long as this file does.",
        example: "/dev/shm/citadel-6379.cache",
    }
    FRESH: bool = {
        name: "fresh",
        default: "no",
        help: "Recreate the cache file, discarding the keys in it",
        doc: "Recreate the cache file at startup, discarding its keys. Needed after a \
              layout change or a maxmemory change; prefer the --fresh flag for one-offs.",
    }
    REQUIREPASS: Option<String> = {
        name: "requirepass",
        value_name: "PASSWORD",
        help: "Password clients must send with AUTH before other commands",
        doc: "Password clients must send with AUTH. Default: none (no AUTH needed). \
              CONFIG SET requirepass changes it at run time.",
        example: "change-me",
        live: true,
        check: |p| if p.as_deref() == Some("") { Err("must not be empty".into()) } else { Ok(()) },
    }
    ACLFILE: Option<PathBuf> = {
        name: "aclfile",
        value_name: "PATH",
        help: "ACL users file (Redis's users.acl format), loaded at start; ACL LOAD/SAVE use it",
        doc: "The ACL file, in Redis's users.acl format: one `user <name> <rules...>` line \
              per user, as ACL LIST prints them. Loaded at start (a bad file stops the \
              start); ACL LOAD reloads it and ACL SAVE writes the users to it. Without \
              it, ACL LOAD and ACL SAVE are refused as in Redis. A `default` user in the \
              file overrides requirepass.",
        example: "/etc/citadel/users.acl",
    }
    MAXCLIENTS: usize = {
        name: "maxclients",
        value_name: "N",
        default: "10000",
        help: "Most concurrent client connections; extra ones are refused",
        doc: "Most concurrent client connections; extra ones get \"-ERR max number of \
              clients reached\" and are closed. citadel raises its open-file limit to fit. \
              CONFIG SET maxclients changes it at run time.",
        live: true,
        check: positive,
    }
    MAX_VALUE_SIZE: Size = {
        name: "max-value-size",
        value_name: "SIZE",
        default: "64mb",
        help: "Largest value a client may store, e.g. 64mb",
        doc: "Largest value a client may store (and so the largest bulk string accepted).",
        check: |v| match v.0 {
            0 => Err("must be positive".into()),
            n if n > u64::from(u32::MAX) => Err("must be below 4gb".into()),
            _ => Ok(()),
        },
    }
    SHUTDOWN_TIMEOUT_MS: u64 = {
        name: "shutdown-timeout-ms",
        value_name: "MS",
        default: "10000",
        help: "At shutdown, how long parked clients may wait for replies still owed (e.g. pipeline calls)",
        doc: "On SIGTERM or SHUTDOWN the server stops accepting and reading, then gives \
              every client parked on a call (plugin, read-through, pipeline) this long to \
              receive its reply before closing it; clients that do not read their replies \
              are closed after 2 s.",
        check: positive,
    }
    DATABASES: u64 = {
        name: "databases",
        value_name: "N",
        default: "16",
        help: "How many numbered databases (SELECT 0 to N-1), at most 16",
        doc: "How many numbered databases clients may SELECT (0 to N-1), as Redis's \
              `databases`; at most 16. SWAPDB's table and every database's keys live in \
              the cache file, so a restart keeps them.",
        check: |v| match *v {
            1..=16 => Ok(()),
            _ => Err("must be 1 to 16".into()),
        },
    }
    BUSY_SCRIPT_TIME: u64 = {
        name: "busy-script-time",
        value_name: "MS",
        default: "5000",
        help: "How long a Lua script or function runs before SCRIPT KILL / FUNCTION KILL may stop it",
        doc: "A Lua script (EVAL) or function (FCALL) that has run this long is busy: \
              SCRIPT KILL or FUNCTION KILL from another connection stops it if it has not \
              written yet, and it is logged (Redis's busy-reply-threshold / lua-time-limit, \
              names CONFIG GET and SET answer to as well). SHUTDOWN NOSAVE always \
              interrupts a running script.",
        live: true,
        check: positive,
    }
    CLIENT_OUTPUT_LIMIT: Size = {
        name: "client-output-limit",
        value_name: "SIZE",
        default: "256mb",
        help: "Per-client limit of unsent replies; a client past it is dropped",
        doc: "Per-client limit of replies not yet read by the client; a client past it \
              is disconnected (like Redis's client-output-buffer-limit).",
        check: positive,
    }
    NOTIFY_KEYSPACE_EVENTS: String = {
        name: "notify-keyspace-events",
        value_name: "CLASSES",
        default: "",
        help: "Keyspace notifications to publish, as Redis's letters (e.g. KEA); empty: none",
        doc: "Which key changes are published to Pub/Sub, with Redis's class letters: \
              K (__keyspace@0__:<key> channels), E (__keyevent@0__:<event> channels), \
              g generic (del, expire, rename ...), $ string, x expired, e evicted, \
              A all classes. Empty (the default) publishes nothing and costs nothing. \
              Changes on every core are published, including expiry and eviction \
              found by the cache. CONFIG SET changes it at run time.",
        live: true,
        check: |v| crate::key_events::parse(v).map(|_| ()),
    }
    TRACKING_TABLE_MAX_KEYS: usize = {
        name: "tracking-table-max-keys",
        value_name: "N",
        default: "1000000",
        help: "Most keys remembered for client-side caching (CLIENT TRACKING); 0: no bound",
        doc: "Most keys the server remembers for clients that track them (CLIENT \
              TRACKING, default mode); past it, remembered keys are dropped and \
              invalidated for their clients, as in Redis. In proxy mode it also \
              bounds, per forwarding connection, the keys read through it for \
              tracking clients. 0 means no bound. CONFIG SET changes it at run \
              time.",
        live: true,
    }
    LOG_LEVEL: String = {
        name: "log-level",
        value_name: "LEVEL",
        default: "info",
        help: "Log filter: error, warn, info, debug, trace (or a tracing directive)",
        doc: "Log filter: error, warn, info, debug, trace, or a tracing directive.",
        check: |l| if l.trim().is_empty() { Err("must not be empty".into()) } else { Ok(()) },
    }
    SLOWLOG_LOG_SLOWER_THAN: i64 = {
        name: "slowlog-log-slower-than",
        value_name: "USEC",
        default: "10000",
        help: "SLOWLOG records commands that ran at least this many microseconds (negative: off)",
        doc: "Commands whose execution took at least this many microseconds are recorded \
              in the slow log (SLOWLOG GET); 0 records every command, a negative value \
              none. As Redis's setting of the same name; CONFIG SET changes it live.",
        live: true,
    }
    SLOWLOG_MAX_LEN: u64 = {
        name: "slowlog-max-len",
        value_name: "N",
        default: "128",
        help: "Most entries the slow log keeps (the oldest are dropped)",
        doc: "Most entries SLOWLOG keeps; older ones are dropped. As Redis's setting of \
              the same name; CONFIG SET changes it live.",
        live: true,
    }
    LATENCY_MONITOR_THRESHOLD: u64 = {
        name: "latency-monitor-threshold",
        value_name: "MS",
        default: "0",
        help: "LATENCY records commands that ran at least this many milliseconds (0: off)",
        doc: "Commands that took at least this many milliseconds are recorded as latency \
              events \"command\" (or \"fast-command\" for O(1) commands) for LATENCY \
              LATEST / HISTORY / DOCTOR; 0 turns the monitor off. As Redis's setting; \
              CONFIG SET changes it live.",
        live: true,
    }
    LIST_MAX_LISTPACK_SIZE: i64 = {
        name: "list-max-listpack-size",
        value_name: "N",
        default: "-2",
        help: "Size of a list's packed form (never past 1 KiB) and of its pages: -1..-5 = 4..64 KiB, N>0 = N elements",
        doc: "How big a list grows in the packed form (one item) before it is stored as a \
              root and pages (a quicklist: O(1) pushes, pops and index lookups), and how big \
              each page is: -1 to -5 for 4, 8, 16, 32 or 64 KiB, a positive N for N elements \
              (pages hold 8 to 128 elements; N, at most 1024, when positive). A list past 1 KiB is \
              paged whatever this says (a packed list's push rewrites it whole). As Redis's setting of the same name; CONFIG \
              SET changes it live (lists take it up on their next write; also as \
              list-max-ziplist-size).",
        live: true,
    }
    HASH_MAX_LISTPACK_ENTRIES: usize = {
        name: "hash-max-listpack-entries",
        value_name: "N",
        default: "512",
        help: "OBJECT ENCODING says listpack for a hash of at most this many fields",
        doc: "As Redis's setting (7.0.15's default): a hash of at most this many fields, \
              none longer than hash-max-listpack-value, reports OBJECT ENCODING \
              listpack and answers HSCAN in one call, else hashtable. A hash becomes \
              paged (a root and pages, O(1) per field) past 1024 fields or this, \
              whichever is larger. CONFIG SET changes it live (also under Redis's older \
              name hash-max-ziplist-entries).",
        live: true,
    }
    HASH_MAX_LISTPACK_VALUE: usize = {
        name: "hash-max-listpack-value",
        value_name: "BYTES",
        default: "64",
        help: "OBJECT ENCODING says listpack while every field and value is at most this long",
        doc: "As Redis's setting: the longest field or value a listpack-encoded hash \
              holds (see hash-max-listpack-entries). CONFIG SET changes it live (also as \
              hash-max-ziplist-value).",
        live: true,
    }
    ZSET_MAX_LISTPACK_ENTRIES: usize = {
        name: "zset-max-listpack-entries",
        value_name: "N",
        default: "128",
        help: "OBJECT ENCODING says listpack for a sorted set of at most this many members",
        doc: "As Redis's setting (7.0.15's default): a sorted set of at most this many \
              members, none longer than zset-max-listpack-value, reports OBJECT ENCODING \
              listpack (and DUMP writes it as one), else skiplist. A sorted set becomes \
              paged (a root and pages, O(log n) per update) past 1024 members or this, \
              whichever is larger. CONFIG SET changes it live (also under Redis's older \
              name zset-max-ziplist-entries).",
        live: true,
    }
    ZSET_MAX_LISTPACK_VALUE: usize = {
        name: "zset-max-listpack-value",
        value_name: "BYTES",
        default: "64",
        help: "OBJECT ENCODING says listpack while every sorted-set member is at most this long",
        doc: "As Redis's setting: the longest member a listpack-encoded sorted set holds \
              (see zset-max-listpack-entries). CONFIG SET changes it live (also as \
              zset-max-ziplist-value).",
        live: true,
    }
    SET_MAX_INTSET_ENTRIES: usize = {
        name: "set-max-intset-entries",
        value_name: "N",
        default: "512",
        help: "A set of at most this many integers is an intset (sorted, OBJECT ENCODING intset)",
        doc: "As Redis's setting: a set of at most this many canonical 64-bit integers \
              is kept sorted and reports OBJECT ENCODING intset (SMEMBERS and SSCAN \
              answer in numeric order), else hashtable. A set becomes paged (a root \
              and pages, O(1) per member) past 1024 members or this, whichever is \
              larger. CONFIG SET changes it live.",
        live: true,
    }
    STREAM_NODE_MAX_ENTRIES: u64 = {
        name: "stream-node-max-entries",
        value_name: "N",
        default: "100",
        help: "A stream page (Redis's node) takes new entries while it holds fewer than this; 0: no limit",
        doc: "As Redis's setting: a stream's last page takes a new entry while it holds \
              fewer than this many entries, deleted ones counted (0: any number), and a \
              full one starts a new page. Approximate trimming (MAXLEN ~, MINID ~) removes \
              whole pages only, so this decides what it removes, and its default LIMIT is \
              100 times this. CONFIG SET changes it live (streams take it up on their \
              next XADD; pages already full stay as they are).",
        check: |v| match *v {
            n if n > i64::MAX as u64 => Err("must be at most 9223372036854775807".into()),
            _ => Ok(()),
        },
        live: true,
    }
    STREAM_NODE_MAX_BYTES: Size = {
        name: "stream-node-max-bytes",
        value_name: "SIZE",
        default: "4096",
        help: "A stream page (Redis's node) takes new entries while below this many bytes; 0: no limit",
        doc: "As Redis's setting: a stream's last page takes a new entry while its fields \
              and values (with Redis's listpack overhead) stay below this many bytes \
              (0: up to 1gb, Redis's largest node), else the entry starts a new page. See \
              stream-node-max-entries. CONFIG SET changes it live.",
        live: true,
    }
    HLL_SPARSE_MAX_BYTES: Size = {
        name: "hll-sparse-max-bytes",
        value_name: "SIZE",
        default: "3000",
        help: "A HyperLogLog in the sparse encoding turns dense past this many bytes",
        doc: "As Redis's setting: a HyperLogLog is created sparse (run-length registers) \
              and converted to the dense encoding (12 KiB) when an update would make it \
              longer than this many bytes, header included. CONFIG SET changes it live \
              (for the next update of each HyperLogLog; PFSELFTEST reads it too).",
        check: |v| match v.0 {
            n if n > i64::MAX as u64 => Err("must be at most 9223372036854775807".into()),
            _ => Ok(()),
        },
        live: true,
    }
    ENABLE_DEBUG_COMMAND: DebugCommand = {
        name: "enable-debug-command",
        value_name: "no|yes|local",
        default: "no",
        help: "Allow the DEBUG command: no, yes, or local (loopback clients only)",
        doc: "Allow the DEBUG command (as Redis's enable-debug-command): no, yes, or \
              local (only clients connected over loopback). DEBUG PANIC makes the \
              server panic while serving the calling connection, which is then closed \
              (the server goes on); tests use it.",
    }
}

/// Checks across settings, once every source was applied.
pub fn check(store: &crate::Store) -> Result<(), String> {
    let bind = store.get(&BIND);
    if !bind.is_loopback() && store.get(&REQUIREPASS).is_none() {
        return Err(format!(
            "refusing to listen on non-loopback address {bind} without a password: \
             set --requirepass (or requirepass in the config file), or bind 127.0.0.1"
        ));
    }
    Ok(())
}
