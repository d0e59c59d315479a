//! The settings as a user meets them: flags, the file, the reference file.

use std::net::IpAddr;
use std::path::PathBuf;

use citadel_settings::cli::{self, Invocation, Loaded};
use citadel_settings::{cluster, keyspace, pipeline, plugin, reference, server, Cores, Size};

fn load(args: &[&str]) -> Result<Loaded, String> {
    let argv = std::iter::once("citadel").chain(args.iter().copied());
    match cli::parse(argv).map_err(|e| e.to_string())? {
        Ok(Invocation::Run(loaded)) => Ok(loaded),
        Ok(Invocation::PrintConfig) => Err("print-config".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn with_file(text: &str, args: &[&str]) -> Result<Loaded, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    let mut all = vec!["--config", path.to_str().unwrap()];
    all.extend_from_slice(args);
    load(&all)
}

#[test]
fn defaults() {
    let c = load(&[]).unwrap();
    let s = &c.server;
    assert_eq!(s.get(&server::PORT), 6379);
    assert_eq!(s.get(&server::BIND), IpAddr::from([127, 0, 0, 1]));
    assert_eq!(s.get(&server::MAXMEMORY), Size(1 << 30));
    assert_eq!(s.get(&server::MAXCLIENTS), 10_000);
    assert_eq!(s.get(&server::MAX_VALUE_SIZE), Size(64 << 20));
    assert_eq!(s.get(&server::CACHE_FILE), None);
    assert!(!s.get(&server::FRESH));
    assert!(s.get(&server::THREADS).is_none() && s.get(&server::REQUIREPASS).is_none());
    assert!(c.plugins.is_empty() && c.keyspaces.is_empty());
}

#[test]
fn flags_win_over_file() {
    let c = with_file(
        "port = 7000\nmaxmemory = \"2mb\"\nmax_value_size = 4096\nthreads = 2\nfresh = true\n",
        &["--port", "7001"],
    )
    .unwrap();
    let s = &c.server;
    assert_eq!(s.get(&server::PORT), 7001);
    assert_eq!(s.get(&server::MAXMEMORY), Size(2 << 20));
    assert_eq!(s.get(&server::MAX_VALUE_SIZE), Size(4096));
    assert_eq!(s.get(&server::THREADS), Some(2));
    assert!(s.get(&server::FRESH));
    let c = load(&["--fresh", "--maxmemory", "64MB"]).unwrap();
    assert!(c.server.get(&server::FRESH));
    assert_eq!(c.server.get(&server::MAXMEMORY), Size(64 << 20));
}

#[test]
fn rejects_bad_values_with_the_key_named() {
    for (args, key) in [
        (&["--maxmemory", "lots"][..], "maxmemory"),
        (&["--threads", "0"], "threads"),
        (&["--threads", "65"], "threads"),
        (&["--bind", "nowhere"], "bind"),
        (&["--port", "0"], "port"),
        (&["--max-value-size", "5gb"], "max-value-size"),
        (&["--enable-debug-command", "maybe"], "enable-debug-command"),
    ] {
        let err = load(args).err().unwrap_or_default();
        assert!(err.contains(key), "{args:?}: {err}");
    }
    let err = with_file("prot = 1\n", &[]).err().unwrap();
    assert!(err.contains("prot"), "{err}");
    let err = with_file("fresh = \"sometimes\"\n", &[]).err().unwrap();
    assert!(err.contains("fresh"), "{err}");
    let bind_open = load(&["--bind", "0.0.0.0"]).unwrap();
    assert!(server::check(&bind_open.server).is_err());
    let with_pass = load(&["--bind", "0.0.0.0", "--requirepass", "x"]).unwrap();
    assert!(server::check(&with_pass.server).is_ok());
}

#[test]
fn plugin_and_keyspace_tables() {
    let c = with_file(
        "[[plugin]]\nname = \"e\"\nexec = \"sh\"\n\
         [[plugin]]\nname = \"f\"\nexec = \"/bin/sh\"\nargs = [\"-c\", \"x\"]\n\
         env = { A = \"1\" }\ncores = [1, 2]\ninstances = 2\nmax-inflight = 7\n\
         timeout-ms = 10\nring-capacity = \"64kb\"\nmax_attempts = 5\n\
         [[keyspace]]\nprefix = \"u:\"\nloader = \"e\"\nttl-ms = 1000\n",
        &[],
    )
    .unwrap();
    let (p0, p1) = (&c.plugins[0], &c.plugins[1]);
    assert_eq!(p0.get(&plugin::CORES), Cores::Auto);
    assert_eq!(p0.get(&plugin::TIMEOUT_MS), 5000);
    assert_eq!(p1.get(&plugin::CORES), Cores::List(vec![1, 2]));
    assert_eq!(p1.get(&plugin::ARGS), vec!["-c", "x"]);
    assert_eq!(p1.get(&plugin::ENV).get("A").map(String::as_str), Some("1"));
    assert_eq!(
        (
            p1.get(&plugin::INSTANCES).max,
            p1.get(&plugin::MAX_INFLIGHT)
        ),
        (2, 7)
    );
    assert_eq!(p1.get(&plugin::RING_CAPACITY), Size(64 << 10));
    assert_eq!(p1.get(&plugin::MAX_ATTEMPTS), 5);
    let k = &c.keyspaces[0];
    assert_eq!(k.get(&keyspace::PREFIX), "u:");
    assert_eq!(k.get(&keyspace::TTL_MS), 1000);
    assert_eq!(k.get(&keyspace::TTL_JITTER_MS), None);

    for (text, needle) in [
        // A missing exec (and versions) is refused by the supervisor's
        // resolve, which sees both keys.
        (
            "[[plugin]]\nname = \"e\"\nversions = 3\n",
            "expected an array",
        ),
        (
            "[[plugin]]\nname = \"e\"\nbalance = \"random\"\n",
            "round-robin or latency",
        ),
        (
            "[[plugin]]\nname = \"e\"\nexec = \"sh\"\nring-capacity = 5000\n",
            "power of two",
        ),
        (
            "[[plugin]]\nname = \"e\"\nexec = \"sh\"\ncolor = 1\n",
            "color",
        ),
        ("[[plugin]]\nname = \"a b\"\nexec = \"sh\"\n", "letters"),
        (
            "[[keyspace]]\nprefix = \"u:\"\nloader = \"pg\"\nttl-ms = 0\n",
            "positive",
        ),
        ("plugin = 3\n", "[[plugin]]"),
    ] {
        let err = with_file(text, &[]).err().unwrap_or_default();
        assert!(err.contains(needle), "{text:?}: {err}");
    }
}

#[test]
fn print_config_is_an_invocation() {
    let argv = ["citadel", "--print-config"];
    assert!(matches!(
        cli::parse(argv).unwrap(),
        Ok(Invocation::PrintConfig)
    ));
    let help = cli::command().render_help().to_string();
    for s in server::TABLE.settings {
        assert!(help.contains(&format!("--{}", s.name())), "{help}");
    }
}

/// `deploy/citadel.toml` is exactly what `citadel --print-config` prints,
/// and loading it gives the defaults (so the documented defaults are true).
#[test]
fn reference_file_is_current_and_documents_the_defaults() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join("deploy/citadel.toml");
    let rendered = reference::render();
    if std::env::var_os("CITADEL_WRITE_REFERENCE").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        on_disk, rendered,
        "deploy/citadel.toml is out of date: run `citadel --print-config > deploy/citadel.toml` \
         (or this test with CITADEL_WRITE_REFERENCE=1)"
    );
    let from_file = load(&["--config", path.to_str().unwrap()]).unwrap();
    let defaults = load(&[]).unwrap();
    for s in server::TABLE.settings {
        assert_eq!(
            from_file.server.render(*s),
            defaults.server.render(*s),
            "{}",
            s.name()
        );
    }
}

/// Every table's store indices are distinct and below its length (the
/// cluster part takes the top level's first ones), and a part's setting
/// reads back what was set.
#[test]
fn store_indices_cover_each_table_once() {
    for table in [
        &server::TABLE,
        &plugin::TABLE,
        &keyspace::TABLE,
        &pipeline::TABLE,
    ] {
        let mut seen: Vec<usize> = table.settings.iter().map(|s| s.index()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..table.settings.len()).collect::<Vec<_>>());
    }
    let c = load(&[
        "--cluster-enabled",
        "yes",
        "--cluster-nodes",
        "a:1,b:2=3",
        "--port",
        "7001",
    ])
    .unwrap();
    assert!(c.server.get(&cluster::CLUSTER_ENABLED).0);
    assert_eq!(c.server.get(&cluster::CLUSTER_NODES).0.len(), 2);
    assert_eq!(c.server.get(&server::PORT), 7001);
    assert_eq!(c.server.render(&cluster::CLUSTER_NODES), "a:1,b:2=3");
}
