//! One plugin, two placements, end to end: the real server runs the real
//! echo plugin (`plugins/examples/echo`) twice from one source, as a process
//! (`echo`) and as an inline module loaded into the server (`iecho`, the
//! crate's `cdylib`). Both answer the same calls identically (small, binary
//! and big payloads, KEY, pipelined), and so does the Python SDK's
//! upper-casing example as a process (`pyecho`); a handler panic is an error reply to
//! that call only, PLUGIN RELOAD swaps the module, a handler stuck past
//! the stop timeout is left detached (and its slot serves again once it
//! returns; the calls queued behind it are sent to the new module at
//! once), a reload overlaps (the new module serves a spare slot while
//! the old thread drains: no failed call under load), and a module built for another ABI or without the entry
//! symbols is refused at start-up.

use std::path::{Path, PathBuf};

use citadel_tests::clients::plugin_info;
use citadel_tests::plugin_rig::{self, info, wait_until, Load};
use citadel_tests::redis::{self, Connection};
use citadel_tests::{echo_plugin_bin, free_port, run_to_exit, Server};

/// The echo crate's inline module, next to its binary.
fn echo_module() -> PathBuf {
    echo_plugin_bin()
        .parent()
        .unwrap()
        .join("libcitadel_plugin_echo.so")
}

struct Rig {
    server: Server,
    _dir: tempfile::TempDir,
}

/// `echo` as a process and `iecho` inline, same code.
fn start() -> Rig {
    start_with("")
}

/// `start`, plus the `[[plugin]]` tables in `extra`.
fn start_with(extra: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let conf = format!(
        "[[plugin]]\nname = \"echo\"\nexec = \"{}\"\ncores = \"none\"\n\
         [[plugin]]\nname = \"iecho\"\nplacement = \"inline\"\nexec = \"{}\"\ncores = \"none\"\n{extra}",
        echo_plugin_bin().display(),
        echo_module().display()
    );
    let path = dir.path().join("plugins.toml");
    std::fs::write(&path, conf).unwrap();
    let server = Server::start(&["--config", path.to_str().unwrap()]);
    Rig { server, _dir: dir }
}

/// A reply, or an error reply's text (comparable across placements).
type Answer = Result<redis::Value, String>;

fn call(con: &mut Connection, plugin: &str, payload: &[u8], key: Option<&str>) -> Answer {
    let mut c = redis::cmd("PLUGIN");
    c.arg("CALL").arg(plugin).arg(payload);
    if let Some(k) = key {
        c.arg("KEY").arg(k);
    }
    c.query::<redis::Value>(con).map_err(|e| e.to_string())
}

/// PLUGIN RELOAD iecho.
fn reload(con: &mut Connection) {
    let ok: String = redis::cmd("PLUGIN")
        .arg("RELOAD")
        .arg("iecho")
        .query(con)
        .unwrap();
    assert_eq!(ok, "OK");
}

fn payloads() -> Vec<Vec<u8>> {
    let big: Vec<u8> = (0..256 * 1024).map(|i| b"abcxyz\n\0"[i % 8]).collect();
    vec![
        b"hello".to_vec(),
        Vec::new(),
        (0u8..=255).collect(),
        b"WHO".to_vec(),
        b"SLEEP 5".to_vec(),
        vec![b'q'; 64],
        big,
    ]
}

/// The Python SDK's example (`plugins/python/examples/upper.py`), which
/// upper-cases as echo does, as a process.
fn python_upper() -> String {
    let py = citadel_tests::workspace_root().join("plugins/python/examples/upper.py");
    format!(
        "[[plugin]]\nname = \"pyecho\"\nexec = \"python3\"\nargs = [\"{}\"]\ncores = \"none\"\n",
        py.display()
    )
}

/// Echo's test commands (`WHO`, `SLEEP`), which the Python example lacks.
fn is_command(payload: &[u8]) -> bool {
    payload == b"WHO" || payload.starts_with(b"SLEEP ")
}

#[test]
fn both_placements_give_identical_replies() {
    let rig = start_with(&python_upper());
    let mut con = rig.server.client();
    for p in payloads() {
        let process = call(&mut con, "echo", &p, None);
        let inline = call(&mut con, "iecho", &p, None);
        assert_eq!(process, inline, "payload of {} bytes", p.len());
        assert!(
            matches!(inline, Ok(redis::Value::BulkString(_))),
            "{inline:?}"
        );
        if !is_command(&p) {
            let python = call(&mut con, "pyecho", &p, None);
            assert_eq!(process, python, "Python, payload of {} bytes", p.len());
        }
    }
    let process = call(&mut con, "echo", b"keyed", Some("user:1"));
    assert_eq!(process, call(&mut con, "iecho", b"keyed", Some("user:1")));
    assert_eq!(process, call(&mut con, "pyecho", b"keyed", Some("user:1")));
    assert_eq!(process, Ok(redis::Value::BulkString(b"KEYED".to_vec())));
    // Pipelined: 200 calls in one write, answered in order by both.
    let pipelined = |con: &mut Connection, plugin: &str| -> Vec<Vec<u8>> {
        let mut pipe = redis::pipe();
        for i in 0..200 {
            pipe.cmd("PLUGIN")
                .arg("CALL")
                .arg(plugin)
                .arg(format!("call-{i}"));
        }
        pipe.query(con).unwrap()
    };
    let inline = pipelined(&mut con, "iecho");
    assert_eq!(pipelined(&mut con, "echo"), inline);
    assert_eq!(pipelined(&mut con, "pyecho"), inline);
    assert_eq!(inline[199], b"CALL-199");
}

#[test]
fn a_panicking_inline_handler_answers_an_error_and_keeps_serving() {
    let rig = start();
    let mut con = rig.server.client();
    for plugin in ["echo", "iecho"] {
        let reply = call(&mut con, plugin, b"PANIC", None);
        let Err(e) = &reply else {
            panic!("{plugin}: PANIC answered {reply:?}");
        };
        assert!(e.contains("panicked"), "{plugin}: {e}");
        assert_eq!(
            call(&mut con, plugin, b"after", None),
            Ok(redis::Value::BulkString(b"AFTER".to_vec()))
        );
    }
    // The same error, but for the plugin's name.
    let inline =
        call(&mut con, "iecho", b"PANIC", None).map_err(|e| e.replace("'iecho'", "'echo'"));
    assert_eq!(call(&mut con, "echo", b"PANIC", None), inline);
    assert_eq!(plugin_info(&rig.server, "iecho", "restarts"), "0");
    assert_eq!(plugin_info(&rig.server, "iecho", "state"), "running");
}

#[test]
fn info_shows_the_placement_and_reload_swaps_the_module() {
    let rig = start();
    let mut con = rig.server.client();
    assert_eq!(plugin_info(&rig.server, "echo", "placement"), "process");
    assert_eq!(plugin_info(&rig.server, "iecho", "placement"), "inline");
    let info: String = redis::cmd("INFO").arg("plugins").query(&mut con).unwrap();
    assert!(info.contains("placement=inline"), "{info}");
    // The inline instance's "pid" is its thread, a task of the server.
    let tid = plugin_info(&rig.server, "iecho", "pid");
    let task = format!("/proc/{}/task/{tid}", rig.server.pid());
    assert!(Path::new(&task).exists(), "{task}");

    reload(&mut con);
    citadel_tests::clients::wait_until("the reload", std::time::Duration::from_secs(10), || {
        plugin_info(&rig.server, "iecho", "reloads") == "1"
    });
    for i in 0..50 {
        let want = format!("AFTER-RELOAD-{i}");
        assert_eq!(
            call(&mut con, "iecho", want.to_lowercase().as_bytes(), None),
            Ok(redis::Value::BulkString(want.into_bytes()))
        );
    }
    // The old thread stops once its calls are answered; its slot is the
    // spare again (not shown).
    citadel_tests::clients::wait_until(
        "the old thread",
        std::time::Duration::from_secs(10),
        || plugin_info(&rig.server, "iecho", "state") == "running",
    );
}

/// The inline echo with a 200 ms stop timeout and 30 s call timeout (a
/// handler it detaches is far from its calls' timeouts).
fn stuck_handler_server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let conf = format!(
        "[[plugin]]\nname = \"iecho\"\nplacement = \"inline\"\nexec = \"{}\"\n\
         cores = \"none\"\nstop-timeout-ms = 200\ntimeout-ms = 30000\n",
        echo_module().display()
    );
    let path = dir.path().join("plugins.toml");
    std::fs::write(&path, conf).unwrap();
    let server = Server::start(&["--config", path.to_str().unwrap()]);
    (server, dir)
}

#[test]
fn a_stuck_inline_handler_is_detached_at_its_stop_timeout() {
    let (server, _dir) = stuck_handler_server();
    let mut con = server.client();
    // A handler busy for 3 s: a thread cannot be killed.
    let mut sleeper_con = server.client();
    let sleeper = std::thread::spawn(move || call(&mut sleeper_con, "iecho", b"SLEEP 3000", None));
    let wait = |what: &str, ok: &mut dyn FnMut() -> bool| {
        citadel_tests::clients::wait_until(what, std::time::Duration::from_secs(20), ok)
    };
    wait("the call in the handler", &mut || {
        plugin_info(&server, "iecho", "in_flight") == "1"
    });
    reload(&mut con);
    // Overlapped: the new module serves the spare slot while the old
    // thread is still in its handler.
    wait("the new module", &mut || {
        plugin_info(&server, "iecho", "reloads") == "1"
    });
    assert_eq!(
        call(&mut con, "iecho", b"during", None),
        Ok(redis::Value::BulkString(b"DURING".to_vec()))
    );
    assert!(!sleeper.is_finished(), "answered beside the stuck handler");
    // Its stop timeout passes: it is left running, detached, and said so.
    wait("the instance detached", &mut || {
        plugin_info(&server, "iecho", "detached") == "1"
    });
    wait("the state shown", &mut || {
        plugin_info(&server, "iecho", "state") == "detached,running"
    });
    assert!(server.log().contains("left running detached"));
    // The handler still answers its call; the thread then returns and its
    // slot is the spare again.
    assert_eq!(
        sleeper.join().unwrap(),
        Ok(redis::Value::BulkString(b"SLEPT 3000".to_vec()))
    );
    wait("the detached thread returned", &mut || {
        plugin_info(&server, "iecho", "state") == "running"
    });
    assert_eq!(
        call(&mut con, "iecho", b"after", None),
        Ok(redis::Value::BulkString(b"AFTER".to_vec()))
    );
}

/// Calls queued in a stuck handler's rings behind it are taken back as
/// soon as the instance is detached (its thread never took them) and
/// answered by the new module, not at their 30 s timeout; the call in the
/// handler still gets its reply.
#[test]
fn calls_queued_behind_a_detached_handler_are_sent_to_the_new_module() {
    let (server, _dir) = stuck_handler_server();
    let wait = |what: &str, ok: &mut dyn FnMut() -> bool| {
        citadel_tests::clients::wait_until(what, std::time::Duration::from_secs(20), ok)
    };
    let mut sleeper_con = server.client();
    let sleeper = std::thread::spawn(move || call(&mut sleeper_con, "iecho", b"SLEEP 5000", None));
    wait("the call in the handler", &mut || {
        plugin_info(&server, "iecho", "in_flight") == "1"
    });
    // Three more calls wait in the rings behind the stuck handler.
    let queued: Vec<_> = (0..3)
        .map(|i| {
            let mut con = server.client();
            std::thread::spawn(move || call(&mut con, "iecho", format!("q{i}").as_bytes(), None))
        })
        .collect();
    wait("the queued calls", &mut || {
        plugin_info(&server, "iecho", "in_flight") == "4"
    });
    let mut con = server.client();
    reload(&mut con);
    for (i, q) in queued.into_iter().enumerate() {
        let want = format!("Q{i}").into_bytes();
        assert_eq!(q.join().unwrap(), Ok(redis::Value::BulkString(want)));
    }
    assert_eq!(plugin_info(&server, "iecho", "detached"), "1");
    assert!(
        !sleeper.is_finished(),
        "the stuck call is still in its handler"
    );
    assert_eq!(
        sleeper.join().unwrap(),
        Ok(redis::Value::BulkString(b"SLEPT 5000".to_vec()))
    );
    // The new module serves.
    assert_eq!(
        call(&mut con, "iecho", b"after", None),
        Ok(redis::Value::BulkString(b"AFTER".to_vec()))
    );
}

#[test]
fn overlapped_inline_reload_under_load_has_zero_errors() {
    let conf = format!(
        "[[plugin]]\nname = \"iecho\"\nplacement = \"inline\"\nexec = \"{}\"\n\
         cores = \"none\"\ninstances = 2\n",
        echo_module().display()
    );
    let rig = plugin_rig::Rig::start(&conf);
    let mut con = rig.server.client();
    let load = Load::start_on(&rig, "iecho", 8);
    for round in 1..=3u64 {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let before = plugin_info(&rig.server, "iecho", "pid");
        if round == 3 {
            rig.server.signal("HUP");
        } else {
            reload(&mut con);
        }
        // Both instances replaced, one at a time, by new threads.
        wait_until("the upgrade", std::time::Duration::from_secs(20), || {
            let f = info(&mut con, "iecho");
            let tids: Vec<&str> = f["pid"].split(',').collect();
            f["reloads"] == (2 * round).to_string()
                && f["state"] == "running,running"
                && tids
                    .iter()
                    .all(|t| *t != "0" && !before.split(',').any(|b| b == *t))
        });
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let total = load.finish();
    assert!(total > 100, "only {total} calls");
    let f = info(&mut con, "iecho");
    assert_eq!(
        (f["errors"].as_str(), f["timeouts"].as_str()),
        ("0", "0"),
        "{f:?}"
    );
    assert_eq!(f["restarts"], "0", "{f:?}");
    assert_eq!(f["detached"], "0", "{f:?}");
    assert_eq!(f["instances"], "2", "{f:?}");
}

/// A copy of the echo module with `from` replaced by `to` (same length).
fn patched_module(dir: &Path, name: &str, from: &[u8], to: &[u8]) -> PathBuf {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(echo_module()).unwrap();
    let mut found = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            found += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(found > 0, "pattern not in the module");
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The server's exit status and output with `module` as an inline plugin.
fn start_with_module(dir: &Path, module: &Path) -> (std::process::ExitStatus, String) {
    let conf = dir.join("bad.toml");
    std::fs::write(
        &conf,
        format!(
            "[[plugin]]\nname = \"bad\"\nplacement = \"inline\"\nexec = \"{}\"\ncores = \"none\"\n",
            module.display()
        ),
    )
    .unwrap();
    let port = free_port().to_string();
    run_to_exit(&["--port", &port, "--config", conf.to_str().unwrap()])
}

#[test]
fn a_module_for_another_abi_or_without_the_symbols_is_refused() {
    use citadel_proto::inline_abi::{ABI_MAGIC, ABI_VERSION};
    let dir = tempfile::tempdir().unwrap();
    let tag = |version: u32| {
        let mut t = ABI_MAGIC.to_le_bytes().to_vec();
        t.extend_from_slice(&version.to_le_bytes());
        t
    };
    let other_abi = patched_module(
        dir.path(),
        "other.so",
        &tag(ABI_VERSION),
        &tag(ABI_VERSION + 98),
    );
    let (status, out) = start_with_module(dir.path(), &other_abi);
    assert!(!status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "built for inline ABI version {}",
            ABI_VERSION + 98
        )) && out.contains("rebuild it"),
        "{out}"
    );

    let no_tag = patched_module(
        dir.path(),
        "notag.so",
        b"CITADEL_INLINE_ABI",
        b"CITADEL_INLINE_XYZ",
    );
    let (status, out) = start_with_module(dir.path(), &no_tag);
    assert!(!status.success(), "{out}");
    assert!(
        out.contains("symbol CITADEL_INLINE_ABI is missing") && out.contains("export_inline!"),
        "{out}"
    );

    let (status, out) = start_with_module(dir.path(), &dir.path().join("absent.so"));
    assert!(!status.success(), "{out}");
    assert!(
        out.contains("inline module") && out.contains("not found"),
        "{out}"
    );
}

/// The text pipeline (`plugins/examples/text-stages`), each stage inline
/// or a process.
fn text_pipeline(dir: &Path, split_inline: bool, upper_inline: bool) -> Server {
    let bin = citadel_tests::text_stage_bin();
    let module = bin.parent().unwrap().join("libcitadel_text_stages.so");
    let stage = |name: &str, inline: bool| {
        let (placement, exec) = if inline {
            ("inline", module.display())
        } else {
            ("process", bin.display())
        };
        format!(
            "[[plugin]]\nname = \"{name}\"\nplacement = \"{placement}\"\nexec = \"{exec}\"\n\
             args = [\"--role\", \"{name}\"]\ncores = \"none\"\n"
        )
    };
    let conf = format!(
        "{}{}[[pipeline]]\nname = \"text\"\nstages = [\"split\", \"upper\"]\ntimeout-ms = 20000\n",
        stage("split", split_inline),
        stage("upper", upper_inline)
    );
    let path = dir.join(format!("text-{split_inline}-{upper_inline}.toml"));
    std::fs::write(&path, conf).unwrap();
    Server::start(&["--config", path.to_str().unwrap()])
}

fn pipeline_call(con: &mut Connection, args: &[&str]) -> Answer {
    let mut c = redis::cmd("PIPELINE");
    c.arg("CALL").arg("text").arg(args);
    c.query::<redis::Value>(con).map_err(|e| e.to_string())
}

#[test]
fn pipeline_stages_give_the_same_results_inline_and_as_processes() {
    let dir = tempfile::tempdir().unwrap();
    let calls = |server: &Server| -> Vec<Answer> {
        let mut con = server.client();
        let _: () = redis::cmd("SET")
            .arg("doc")
            .arg("one\ntwo\nthree\n")
            .query(&mut con)
            .unwrap();
        vec![
            pipeline_call(&mut con, &["DATA", "alpha\nbeta\ngamma\n"]),
            pipeline_call(&mut con, &["DATA", "a\nb\nc\nd\n", "EVERY", "2"]),
            // Read in place from the cache file: inline, the server's own
            // cache memory, mapped into its address space again.
            pipeline_call(&mut con, &["KEY", "doc"]),
            pipeline_call(&mut con, &["DATA", "BAD input"]),
        ]
    };
    let processes = calls(&text_pipeline(dir.path(), false, false));
    let mixed = calls(&text_pipeline(dir.path(), true, false));
    let inline = calls(&text_pipeline(dir.path(), true, true));
    assert!(
        matches!(&processes[2], Ok(redis::Value::BulkString(b)) if b.windows(5).any(|w| w == b"THREE")),
        "{:?}",
        processes[2]
    );
    assert!(processes[3].is_err(), "{:?}", processes[3]);
    assert_eq!(processes, mixed);
    assert_eq!(processes, inline);
}
