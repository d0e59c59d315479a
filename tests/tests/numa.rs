//! `--numa-node`: the server threads on the node's CPUs, the cache mapping
//! bound to its memory (checked in /proc/<pid>/numa_maps), the plan
//! logged, and a node that does not exist refused with a clear error.

use citadel_tests::{run_to_exit, Server};

/// The `/proc/<pid>/numa_maps` line of the server's cache file mapping.
fn cache_mapping(server: &Server) -> String {
    let maps = std::fs::read_to_string(format!("/proc/{}/numa_maps", server.pid())).unwrap();
    let file = server.cache_file().display().to_string();
    maps.lines()
        // The path whole: the stats region beside it shares its prefix.
        .find(|l| l.contains(&format!("file={file} ")))
        .unwrap_or_else(|| panic!("no mapping of {file} in numa_maps:\n{maps}"))
        .to_string()
}

#[test]
fn node_zero_binds_threads_and_cache_memory() {
    let server = Server::start(&["--numa-node", "0"]);
    let log = server.log();
    let plan = log
        .lines()
        .find(|l| l.contains("numa plan"))
        .unwrap_or_else(|| panic!("no numa plan logged:\n{log}"));
    assert!(plan.contains("node=0"), "{plan}");
    assert!(
        plan.contains("thread 0 -> cpu ") && plan.contains("(node 0)"),
        "{plan}"
    );
    assert!(plan.contains("thread 1 -> cpu "), "{plan}");
    assert!(plan.contains("MPOL_BIND"), "{plan}");
    assert!(
        cache_mapping(&server).contains(" bind:0 "),
        "{}",
        cache_mapping(&server)
    );
    let mut con = server.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v, "v");
}

#[test]
fn auto_picks_a_node_and_preferred_only_prefers_it() {
    let server = Server::start(&["--numa-node", "auto", "--numa-memory", "preferred"]);
    let log = server.log();
    assert!(log.contains("numa plan") && log.contains("node=0"), "{log}");
    assert!(log.contains("MPOL_PREFERRED"), "{log}");
    assert!(
        cache_mapping(&server).contains(" prefer:0 "),
        "{}",
        cache_mapping(&server)
    );
}

#[test]
fn without_a_node_nothing_is_bound_but_the_plan_is_logged() {
    let server = Server::start(&[]);
    let log = server.log();
    assert!(
        log.contains("numa plan") && log.contains("not bound"),
        "{log}"
    );
    assert!(
        cache_mapping(&server).contains(" default "),
        "{}",
        cache_mapping(&server)
    );
}

#[test]
fn a_missing_node_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache").display().to_string();
    let port = citadel_tests::free_port().to_string();
    let base = [
        "--port",
        &port,
        "--cache-file",
        &cache,
        "--maxmemory",
        "64mb",
    ];
    for (node, want) in [
        ("1000", "no such NUMA node"),
        ("x", "expected a NUMA node number"),
    ] {
        let args: Vec<&str> = base.iter().copied().chain(["--numa-node", node]).collect();
        let (status, out) = run_to_exit(&args);
        assert_eq!(status.code(), Some(1), "--numa-node {node}: {out}");
        assert!(out.contains(want), "--numa-node {node}: {out}");
        assert!(!out.contains("panicked"), "{out}");
    }
}
