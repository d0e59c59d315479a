//! Pipelines end to end with the real server and two small real stage
//! processes (`plugins/examples/text-stages`): a first stage that splits
//! text into one frame per line (from DATA, a cache KEY read in place, or a
//! FILE) and a second that upper-cases each frame. The same plumbing as the
//! video pipeline (tests/tests/pipeline_video.rs), fast enough to kill and
//! reload stages in the middle of calls many times.

use std::time::{Duration, Instant};

use citadel_tests::redis::{self, Connection};
use citadel_tests::{pipelines, text_stage_bin, Server};

struct Rig {
    server: Server,
    dir: tempfile::TempDir,
}

fn start(split_args: &str, upper_args: &str, extra: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let bin = text_stage_bin().display().to_string();
    let conf = format!(
        "[[plugin]]\nname = \"split\"\nexec = \"{bin}\"\nargs = [\"--role\", \"split\"{split_args}]\ncores = \"none\"\n\
         [[plugin]]\nname = \"upper\"\nexec = \"{bin}\"\nargs = [\"--role\", \"upper\"{upper_args}]\ncores = \"none\"\n\
         [[pipeline]]\nname = \"text\"\nstages = [\"split\", \"upper\"]\ntimeout-ms = 20000\n{extra}"
    );
    let path = dir.path().join("pipeline.toml");
    std::fs::write(&path, conf).unwrap();
    let server = Server::start(&["--config", path.to_str().unwrap()]);
    Rig { server, dir }
}

fn call(con: &mut Connection, args: &[&str]) -> redis::RedisResult<String> {
    let mut c = redis::cmd("PIPELINE");
    c.arg("CALL").arg("text");
    for a in args {
        c.arg(*a);
    }
    c.query(con)
}

/// A connection for PIPELINE CALLs, without a read timeout. A socket read
/// with one (SO_RCVTIMEO) is not restarted after a signal: a SIGCHLD for
/// another test's child (a `kill`, a server exiting) that wakes this thread
/// fails it with EINTR, and redis-rs then skips the next reply, the call's
/// own (a 30 s hang). Without one the kernel restarts the read; the
/// pipeline's timeout-ms bounds every call.
fn caller(rig: &Rig) -> Connection {
    let con = rig.server.client();
    con.set_read_timeout(None).unwrap();
    con
}

fn expected(lines: &[&str]) -> String {
    let results: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{{\"frame\":{i},\"text\":\"{}\"}}", l.to_uppercase()))
        .collect();
    format!(
        "{{\"pipeline\":\"text\",\"frames\":{},\"source\":{{\"lines\":{}}},\"results\":[{}]}}",
        lines.len(),
        lines.len(),
        results.join(",")
    )
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn data_key_and_file_inputs_results_cached_and_errors_answered_by_the_first_stage() {
    let rig = start("", "", "");
    let mut con = caller(&rig);
    let text = "alpha\nbeta\ngamma\n";
    let want = expected(&["alpha", "beta", "gamma"]);
    assert_eq!(call(&mut con, &["DATA", text]).unwrap(), want);
    assert_eq!(pipelines::count(&mut con, "text", "calls"), 1);
    // The same input again: one lookup, no stage touched.
    let records = pipelines::stage_records(&mut con, "text", "upper");
    assert_eq!(call(&mut con, &["DATA", text]).unwrap(), want);
    assert_eq!(pipelines::count(&mut con, "text", "cache_hits"), 1);
    assert_eq!(
        pipelines::stage_records(&mut con, "text", "upper"),
        records,
        "the stages did no work"
    );
    // Options are part of the key.
    assert_eq!(
        call(&mut con, &["DATA", text, "EVERY", "2"]).unwrap(),
        expected(&["alpha", "gamma"])
    );
    // A key's value, read by the stage in place from the cache file.
    let _: () = redis::cmd("SET")
        .arg("doc")
        .arg("one\ntwo\n")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        call(&mut con, &["KEY", "doc"]).unwrap(),
        expected(&["one", "two"])
    );
    let _: () = redis::cmd("SET")
        .arg("doc")
        .arg("three\n")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        call(&mut con, &["KEY", "doc"]).unwrap(),
        expected(&["three"]),
        "a changed value is a new input"
    );
    let err = call(&mut con, &["KEY", "nokey"]).unwrap_err().to_string();
    assert!(err.contains("no such key"), "{err}");
    // A file on the server's machine.
    let file = rig.dir.path().join("input.txt");
    std::fs::write(&file, "from\nfile\n").unwrap();
    let path = file.to_str().unwrap();
    assert_eq!(
        call(&mut con, &["FILE", path]).unwrap(),
        expected(&["from", "file"])
    );
    // An input larger than the first stage's ring (1 MB by default) goes
    // through a spool file.
    let big: Vec<String> = (0..40_000)
        .map(|i| format!("line {i:06} of a long text"))
        .collect();
    let r = call(&mut con, &["DATA", &big.join("\n"), "MAX-FRAMES", "3"]).unwrap();
    assert_eq!(r, expected(&[&big[0], &big[1], &big[2]]));
    // The first stage refuses; the second never sees the call.
    let before = pipelines::stage_records(&mut con, "text", "upper");
    let err = call(&mut con, &["DATA", "BAD input\nx\n"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pipeline 'text'") && err.contains("undecodable"),
        "{err}"
    );
    assert_eq!(pipelines::stage_records(&mut con, "text", "upper"), before);
    // A final answer from the first stage: zero frames, nothing for the next.
    assert_eq!(
        call(&mut con, &["DATA", "NOTHING here"]).unwrap(),
        "{\"pipeline\":\"text\",\"frames\":0,\"source\":{\"lines\":0},\"results\":[]}"
    );
    assert_eq!(pipelines::stage_records(&mut con, "text", "upper"), before);
    // Errors are not cached: the same bad input fails again (and is counted).
    assert!(call(&mut con, &["DATA", "BAD input\nx\n"]).is_err());
    for (args, want) in [
        (vec!["DATA"], "wrong number"),
        (vec!["BLOB", "x"], "syntax"),
        (vec!["EVERY", "2", "x"], "syntax"),
        (vec!["NOCACHE", "EVERY", "2"], "KEY <key>"),
        (vec!["DATA", "x", "EVERY", "0"], "EVERY"),
        (vec!["DATA", "x", "FORMAT", "yuv"], "pixel format"),
        (vec!["DATA", "x", "WIDTH"], "syntax"),
    ] {
        let err = call(&mut con, &args).unwrap_err().to_string();
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let err: redis::RedisResult<String> = redis::cmd("PIPELINE")
        .arg("CALL")
        .arg("nope")
        .arg("DATA")
        .arg("x")
        .query(&mut con);
    assert!(err.unwrap_err().to_string().contains("no such pipeline"));
    let err: redis::RedisResult<String> = redis::cmd("PLUGIN")
        .arg("CALL")
        .arg("split")
        .arg("x")
        .query(&mut con);
    assert!(err.unwrap_err().to_string().contains("PIPELINE CALL text"));
    // Introspection.
    let fields = pipelines::info(&mut con, "PIPELINE", "text");
    assert_eq!(fields["stages"], "split,upper");
    assert!(fields["stage_split"].contains("records="), "{fields:?}");
    // The stage's handler time per record, from its histogram: a bucket's
    // upper bound (64 µs << n). Not its value: preemption on a loaded
    // machine stretches it.
    let p99: u64 = fields["stage_upper"]
        .split(' ')
        .find_map(|f| f.strip_prefix("p99_us="))
        .expect("a p99_us field")
        .parse()
        .unwrap();
    assert!(p99 >= 64 && p99.is_power_of_two(), "{fields:?}");
    assert!(!fields["bottleneck"].is_empty());
    let list: Vec<String> = redis::cmd("PIPELINE").arg("LIST").query(&mut con).unwrap();
    assert!(
        list[0].starts_with("name=text stages=split,upper"),
        "{list:?}"
    );
    let section: String = redis::cmd("INFO").arg("pipelines").query(&mut con).unwrap();
    assert!(
        section.contains("pipelines:1") && section.contains("pipeline_text:"),
        "{section}"
    );
}

#[test]
fn identical_concurrent_calls_share_one_computation() {
    let rig = start(", \"--delay-ms\", \"30\"", "", "");
    let url = rig.server.url();
    let text = "same\ninput\nfor\neveryone\n";
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                call(&mut con, &["DATA", text]).unwrap()
            })
        })
        .collect();
    let results: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let want = expected(&["same", "input", "for", "everyone"]);
    assert!(results.iter().all(|r| *r == want));
    let mut con = rig.server.client();
    let (calls, joined, hits) = (
        pipelines::count(&mut con, "text", "calls"),
        pipelines::count(&mut con, "text", "joined"),
        pipelines::count(&mut con, "text", "cache_hits"),
    );
    assert_eq!(
        calls, 1,
        "one computation (joined {joined}, cache hits {hits})"
    );
    assert_eq!(joined + hits, 19);
}

#[test]
fn a_crash_of_either_stage_in_the_middle_of_a_call_loses_nothing() {
    // Each stage aborts the first time it meets the word CRASH; its
    // uncommitted records are delivered again to the restarted process.
    let rig = start(
        ", \"--crash-word\", \"CRASHSPLIT\"",
        ", \"--crash-word\", \"CRASHUPPER\"",
        "",
    );
    let mut con = caller(&rig);
    let first = pipelines::pids(&mut con, "split");
    let lines = ["a", "b", "CRASHSPLIT here", "c", "d", "e"];
    let text = lines.join("\n");
    assert_eq!(call(&mut con, &["DATA", &text]).unwrap(), expected(&lines));
    assert_ne!(
        pipelines::pids(&mut con, "split"),
        first,
        "the first stage was restarted"
    );
    let first = pipelines::pids(&mut con, "upper");
    let lines = ["x", "CRASHUPPER now", "y"];
    let text = lines.join("\n");
    assert_eq!(call(&mut con, &["DATA", &text]).unwrap(), expected(&lines));
    assert_ne!(
        pipelines::pids(&mut con, "upper"),
        first,
        "the second stage was restarted"
    );
}

#[test]
fn kill_9_and_reload_of_each_stage_under_load_fail_no_call() {
    let rig = start(
        ", \"--delay-ms\", \"2\"",
        ", \"--delay-ms\", \"1\"",
        "result-ttl-ms = 0\n",
    );
    let url = rig.server.url();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (url, stop) = (url.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                let mut done = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let lines: Vec<String> =
                        (0..10).map(|i| format!("c{c} n{done} l{i}")).collect();
                    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
                    let got = call(&mut con, &["DATA", &lines.join("\n")]);
                    assert_eq!(got.unwrap(), expected(&refs), "client {c} call {done}");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut con = rig.server.client();
    for plugin in ["split", "upper"] {
        std::thread::sleep(Duration::from_millis(300));
        let _: () = redis::cmd("PLUGIN")
            .arg("RELOAD")
            .arg(plugin)
            .query(&mut con)
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let before = pipelines::pids(&mut con, plugin);
        for pid in &before {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
        wait_until("a restart", || {
            let now = pipelines::pids(&mut con, plugin);
            !now.is_empty() && now != before
        });
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let calls: u32 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(calls > 20, "only {calls} calls finished");
    assert_eq!(pipelines::count(&mut con, "text", "errors"), 0);
    assert_eq!(pipelines::count(&mut con, "text", "timeouts"), 0);
}

#[test]
fn a_hundred_concurrent_calls_on_different_inputs() {
    let rig = start("", "", "");
    let url = rig.server.url();
    let threads: Vec<_> = (0..100)
        .map(|n| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                let lines = [format!("input {n}"), "second".to_string()];
                let got = call(&mut con, &["DATA", &lines.join("\n")]).unwrap();
                assert_eq!(got, expected(&[&lines[0], &lines[1]]));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut con = rig.server.client();
    assert_eq!(pipelines::count(&mut con, "text", "calls"), 100);
    assert_eq!(pipelines::count(&mut con, "text", "errors"), 0);
}

#[test]
fn python_stages_in_the_middle_and_at_the_end_of_a_chain() {
    let py = citadel_tests::workspace_root().join("plugins/python");
    let filter = format!(
        "[[plugin]]\nname = \"filter\"\nexec = \"python3\"\nargs = [\"{}\"]\ncores = \"none\"\n\
         [[pipeline]]\nname = \"filtered\"\nstages = [\"split2\", \"upper2\", \"filter\"]\n\
         [[plugin]]\nname = \"split2\"\nexec = \"{bin}\"\nargs = [\"--role\", \"split\"]\ncores = \"none\"\n\
         [[plugin]]\nname = \"upper2\"\nexec = \"{bin}\"\nargs = [\"--role\", \"upper\"]\ncores = \"none\"\n",
        py.join("examples/ocr_filter.py").display(),
        bin = text_stage_bin().display()
    ) + &format!(
        "[[plugin]]\nname = \"pyupper\"\nexec = \"python3\"\nargs = [\"{}\"]\ncores = \"none\"\n\
         [[plugin]]\nname = \"split3\"\nexec = \"{bin}\"\nargs = [\"--role\", \"split\"]\ncores = \"none\"\n\
         [[plugin]]\nname = \"upper3\"\nexec = \"{bin}\"\nargs = [\"--role\", \"upper\"]\ncores = \"none\"\n\
         [[pipeline]]\nname = \"middle\"\nstages = [\"split3\", \"pyupper\", \"upper3\"]\n",
        py.join("examples/upper.py").display(),
        bin = text_stage_bin().display()
    );
    let rig = start("", "", &filter);
    let mut con = caller(&rig);
    let got: String = redis::cmd("PIPELINE")
        .arg("CALL")
        .arg("filtered")
        .arg("DATA")
        .arg("one\ntwo\n")
        .query(&mut con)
        .unwrap();
    let want = "{\"pipeline\":\"filtered\",\"frames\":2,\"source\":{\"lines\":2},\"results\":[\
                {\"frame\":0,\"text\":\"ONE\",\"lines\":[],\"filtered_by\":\"ocr_filter.py\"},\
                {\"frame\":1,\"text\":\"TWO\",\"lines\":[],\"filtered_by\":\"ocr_filter.py\"}]}";
    assert_eq!(got, want);
    // A Python stage in the middle passes its output on to the next stage.
    let got: String = redis::cmd("PIPELINE")
        .arg("CALL")
        .arg("middle")
        .arg("DATA")
        .arg("ab\ncd\n")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        got,
        expected(&["ab", "cd"])
            .replace("\"pipeline\":\"text\"", "\"pipeline\":\"middle\"")
            // upper.py upper-cases whole records, the End's summary too.
            .replace("\"lines\"", "\"LINES\"")
    );
    // The two-stage pipeline beside it is unaffected.
    assert_eq!(call(&mut con, &["DATA", "x\n"]).unwrap(), expected(&["x"]));
}

#[test]
fn sigterm_answers_calls_in_flight_before_exiting() {
    // 8 lines at 400 ms each: the call outlasts the 2 s that clients which
    // only do not read their replies get at shutdown.
    let mut rig = start(", \"--delay-ms\", \"400\"", "", "");
    let url = rig.server.url();
    let lines: Vec<String> = (0..8).map(|i| format!("line {i}")).collect();
    let text = lines.join("\n");
    let call_thread = std::thread::spawn(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        call(&mut con, &["DATA", &text])
    });
    // SIGTERM only once the call is in flight: a client still connecting
    // then (a loaded machine) is closed at shutdown, not served.
    let mut con = rig.server.client();
    wait_until("the call in flight", || {
        pipelines::count(&mut con, "text", "in_flight") == 1
    });
    drop(con);
    let asked = Instant::now();
    rig.server.signal("TERM");
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(call_thread.join().unwrap().unwrap(), expected(&refs));
    assert!(
        asked.elapsed() > Duration::from_secs(2),
        "the call was in flight"
    );
    assert!(rig.server.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn bad_pipeline_configurations_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let bin = text_stage_bin().display().to_string();
    let plugin =
        |name: &str| format!("[[plugin]]\nname = \"{name}\"\nexec = \"{bin}\"\ncores = \"none\"\n");
    let cases = [
        (
            format!("{}[[pipeline]]\nname = \"p\"\nstages = [\"a\", \"nope\"]\n", plugin("a")),
            "not a [[plugin]]",
        ),
        (
            format!(
                "{}{}[[pipeline]]\nname = \"p\"\nstages = [\"a\", \"b\"]\n[[pipeline]]\nname = \"q\"\nstages = [\"b\"]\n",
                plugin("a"),
                plugin("b")
            ),
            "already a stage",
        ),
        (
            format!("{}[[pipeline]]\nname = \"p\"\nstages = []\n", plugin("a")),
            "at least one",
        ),
        (
            format!(
                "{}[[pipeline]]\nname = \"p\"\nstages = [\"a\"]\n[[keyspace]]\nprefix = \"k:\"\nloader = \"a\"\n",
                plugin("a")
            ),
            "is a stage of pipeline",
        ),
    ];
    for (i, (conf, want)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, conf).unwrap();
        let (status, out) = citadel_tests::run_to_exit(&["--config", path.to_str().unwrap()]);
        assert!(!status.success(), "case {i} started");
        assert!(out.contains(want), "case {i}: {out}");
    }
}
