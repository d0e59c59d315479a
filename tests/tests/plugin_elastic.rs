//! Elastic plugins and overlapped upgrades, end to end: the real server
//! supervising the real echo plugin (`plugins/examples/echo`; with
//! `ECHO_DELAY_US` every call takes that long, a slow plugin). Every call
//! made while instances start, stop, are killed or upgraded must be
//! answered, correctly (or, while a ring is full, refused with its clear
//! error); the tests poll with deadlines and assert no timing.

use std::time::Duration;

use citadel_tests::echo_plugin_bin;
use citadel_tests::plugin_rig::{call, field, info, wait_until, Load, Rig};
use citadel_tests::redis::Connection;

/// An elastic echo plugin: 1..3 instances, 20 ms per call, short windows.
fn elastic_echo(exec: &str) -> String {
    format!(
        "[[plugin]]\nname = \"echo\"\nexec = \"{exec}\"\ninstances = \"1..3\"\n\
         cores = \"none\"\nmax-inflight = 4096\nrestart-backoff-ms = 50\n\
         scale-up-window-ms = 500\nscale-down-window-ms = 1500\nscale-cooldown-ms = 300\n\
         env = {{ ECHO_DELAY_US = \"20000\" }}\n"
    )
}

fn instances(con: &mut Connection) -> u64 {
    field(con, "echo", "instances")
}

fn pids(con: &mut Connection) -> Vec<u64> {
    info(con, "echo")["pid"]
        .split(',')
        .map(|p| p.parse().unwrap())
        .filter(|p| *p != 0)
        .collect()
}

#[test]
fn scales_up_on_a_burst_and_back_down_after_it() {
    let rig = Rig::start(&elastic_echo(&echo_plugin_bin().display().to_string()));
    let mut con = rig.server.client();
    let f = info(&mut con, "echo");
    assert_eq!(
        (
            f["instances"].as_str(),
            f["instances_min"].as_str(),
            f["instances_max"].as_str()
        ),
        ("1", "1", "3"),
        "{f:?}"
    );
    assert_eq!(f["state"], "running");

    let load = Load::start(&rig, 24);
    wait_until("scale-up to 3 instances", Duration::from_secs(60), || {
        instances(&mut con) == 3
    });
    wait_until("INFO's last change", Duration::from_secs(10), || {
        info(&mut con, "echo")["last_change"].contains("scale up 2 -> 3")
    });
    assert_eq!(pids(&mut con).len(), 3);
    let calls = load.finish();
    assert!(calls > 0);

    wait_until("scale-down to 1 instance", Duration::from_secs(60), || {
        instances(&mut con) == 1 && pids(&mut con).len() == 1
    });
    let f = info(&mut con, "echo");
    assert!(f["last_change"].contains("scale down 2 -> 1"), "{f:?}");
    assert_eq!(
        (
            f["errors"].as_str(),
            f["rejected"].as_str(),
            f["timeouts"].as_str()
        ),
        ("0", "0", "0"),
        "{f:?}"
    );
    assert_eq!(f["in_flight"], "0");
    assert_eq!(call(&mut con, "echo", "still").unwrap(), "STILL");
    assert!(rig.server.log().contains("scale up 1 -> 2"));
}

/// A burst that keeps the request rings full (4 KiB rings hold two
/// 1,500-byte calls; the queueing-delay rule set out of reach): the ring
/// full counts alone scale the plugin up, and it shrinks back after the
/// burst. Calls the full ring refuses get its clear error; every other
/// call is answered correctly.
#[test]
fn scales_up_when_its_rings_are_full_and_back_down_after() {
    let conf = elastic_echo(&echo_plugin_bin().display().to_string())
        + "ring-capacity = 4096\nscale-delay-target-us = 600000000\n";
    let rig = Rig::start(&conf);
    let mut con = rig.server.client();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let burst: Vec<_> = (0..12)
        .map(|w| {
            let (mut c, stop) = (rig.server.client(), stop.clone());
            std::thread::spawn(move || {
                let (mut ok, mut refused) = (0u64, 0u64);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let payload = format!("w{w}-{ok}-").repeat(150);
                    match call(&mut c, "echo", &payload) {
                        Ok(r) => {
                            assert_eq!(r, payload.to_uppercase());
                            ok += 1;
                        }
                        Err(e) => {
                            assert!(e.to_string().contains("ring is full"), "{e}");
                            refused += 1;
                        }
                    }
                }
                (ok, refused)
            })
        })
        .collect();
    wait_until("scale-up on full rings", Duration::from_secs(60), || {
        instances(&mut con) >= 2
    });
    let change = info(&mut con, "echo")["last_change"].clone();
    assert!(change.contains("request ring full"), "{change}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, refused) = burst
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    assert!(ok > 0 && refused > 0, "{ok} answered, {refused} refused");
    wait_until("scale-down to 1 instance", Duration::from_secs(60), || {
        instances(&mut con) == 1 && pids(&mut con).len() == 1
    });
    let f = info(&mut con, "echo");
    assert!(f["last_change"].contains("scale down 2 -> 1"), "{f:?}");
    assert_eq!(
        (f["errors"].as_str(), f["timeouts"].as_str()),
        ("0", "0"),
        "{f:?}"
    );
    assert_eq!(call(&mut con, "echo", "still").unwrap(), "STILL");
}

#[test]
fn kill_9_of_an_instance_mid_burst_loses_nothing() {
    let rig = Rig::start(&elastic_echo(&echo_plugin_bin().display().to_string()));
    let mut con = rig.server.client();
    let load = Load::start(&rig, 24);
    wait_until("scale-up to 2 instances", Duration::from_secs(60), || {
        instances(&mut con) >= 2
    });
    let victim = *pids(&mut con).last().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_until(
        "the killed instance restarted",
        Duration::from_secs(30),
        || field(&mut con, "echo", "restarts") >= 1 && !pids(&mut con).contains(&victim),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(load.finish() > 0);
    let f = info(&mut con, "echo");
    assert_eq!(
        (
            f["errors"].as_str(),
            f["timeouts"].as_str(),
            f["in_flight"].as_str()
        ),
        ("0", "0", "0"),
        "{f:?}"
    );
}

/// PLUGIN RELOAD under a continuous load, four times (twice after the
/// executable was replaced on disk): every call answered, each reload
/// starts new processes beside the old ones and stops the old ones.
#[test]
fn upgrade_under_load_has_zero_errors() {
    let dir = tempfile::tempdir().unwrap();
    let exec = dir.path().join("echo-plugin");
    std::fs::copy(echo_plugin_bin(), &exec).unwrap();
    let rig = Rig::start(&format!(
        "[[plugin]]\nname = \"echo\"\nexec = \"{}\"\ninstances = 2\ncores = \"none\"\n",
        exec.display()
    ));
    let mut con = rig.server.client();
    let load = Load::start(&rig, 8);
    for round in 0..4u64 {
        std::thread::sleep(Duration::from_millis(200));
        let before = pids(&mut con);
        if round >= 2 {
            // A new executable: written beside, renamed over the old path.
            let next = dir.path().join("echo-plugin.next");
            std::fs::copy(echo_plugin_bin(), &next).unwrap();
            std::fs::rename(&next, &exec).unwrap();
        }
        let ok: String = citadel_tests::redis::cmd("PLUGIN")
            .arg("RELOAD")
            .arg("echo")
            .query(&mut con)
            .unwrap();
        assert_eq!(ok, "OK");
        wait_until("the upgrade", Duration::from_secs(30), || {
            let f = info(&mut con, "echo");
            let now = pids(&mut con);
            f["reloads"] == ((round + 1) * 2).to_string()
                && f["state"] == "running,running"
                && now.len() == 2
                && now.iter().all(|p| !before.contains(p))
        });
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(load.finish() > 100);
    let f = info(&mut con, "echo");
    assert_eq!(
        (
            f["errors"].as_str(),
            f["restarts"].as_str(),
            f["rejected"].as_str()
        ),
        ("0", "0", "0"),
        "{f:?}"
    );
    assert!(f["last_change"].contains("upgraded"), "{f:?}");
}
