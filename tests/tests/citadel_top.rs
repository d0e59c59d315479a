//! `citadel-top` in a real terminal: run inside a private tmux server,
//! its screen read with capture-pane and driven with send-keys, while a
//! real citadel serves GETs and echo plugin calls; it reads only the
//! stats region file.

use std::process::Command;
use std::time::Duration;

use citadel_tests::clients::{set_then_gets, wait_until};
use citadel_tests::{citadel_top_bin, echo_plugin_bin, Server};

const PATIENCE: Duration = Duration::from_secs(60);

/// A tmux server of its own (socket name unique to this test process),
/// killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux {
            socket: format!("citadel-top-test-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux (Debian package tmux)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "top"]).1
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

/// The words of a screen line, without the table's borders.
fn words(line: &str) -> Vec<&str> {
    line.split(|c: char| c == '│' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn citadel_top_shows_the_server_live_and_quits_on_q() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("citadel.toml");
    let plugin = format!(
        "[[plugin]]\nname = \"echo\"\nexec = \"{}\"\n",
        echo_plugin_bin().display()
    );
    std::fs::write(&config, plugin).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let stats = format!("{}.stats", server.cache_file().display());
    set_then_gets(&server, 40);
    let mut con = server.client();
    for _ in 0..6 {
        let _: String = redis::cmd("PLUGIN")
            .arg(&["CALL", "echo", "x"])
            .query(&mut con)
            .unwrap();
    }
    let tmux = Tmux::new();
    let command = format!(
        "{} --stats-file {stats} --interval-ms 200",
        citadel_top_bin().display()
    );
    let (started, _) = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "160",
        "-y",
        "50",
        &command,
    ]);
    assert!(started, "tmux new-session failed");
    let title = format!("citadel pid {}", server.pid());
    wait_until("citadel-top's first screen", PATIENCE, || {
        let s = tmux.screen();
        s.contains(&title) && s.contains("cores") && s.contains("hit rate") && s.contains("get")
    });
    // The commands table follows the server: 40 GETs, then 100 more.
    let get_row = |s: &str, calls: &str| {
        s.lines().any(|l| {
            let words = words(l);
            words.first() == Some(&"get") && words.contains(&calls)
        })
    };
    wait_until("40 GETs on screen", PATIENCE, || {
        get_row(&tmux.screen(), "40")
    });
    set_then_gets(&server, 100);
    wait_until("140 GETs on screen", PATIENCE, || {
        get_row(&tmux.screen(), "140")
    });
    let screen = tmux.screen();
    for layer in ["connection", "core", "quota", "downstream", "key"] {
        assert!(
            screen.contains(layer),
            "shed layer {layer} missing:\n{screen}"
        );
    }

    // The plugins panel: the echo plugin's one version, its 6 calls (the
    // 4th column), no errors, a p99 (of the last interval: `-` when idle)
    // and an empty queue.
    let echo_row = |s: &str| {
        s.lines().any(|l| {
            let w = words(l);
            w.len() >= 9
                && w[..2] == ["echo", "default"]
                && w[3] == "6"
                && w[4] == "0"
                && (w[6] == "-" || w[6].starts_with('<'))
                && w[7] == "0"
        })
    };
    wait_until("the echo plugin's row on screen", PATIENCE, || {
        let s = tmux.screen();
        s.contains("plugins") && echo_row(&s)
    });

    tmux.run(&["send-keys", "-t", "top", "q"]);
    wait_until("citadel-top to exit on q", PATIENCE, || {
        !tmux.run(&["has-session", "-t", "top"]).0
    });
}

#[test]
fn citadel_top_refuses_a_missing_stats_file_clearly() {
    let out = Command::new(citadel_top_bin())
        .args(["--stats-file", "/nonexistent/citadel.stats"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/citadel.stats") && err.contains("No such file"),
        "{err}"
    );
}
