//! Doorbells end to end: a server thread clears its reply rings' sleeping
//! flags while its loop runs and sets them (flag, fence, one more look)
//! only before it blocks, so a plugin writes the reply eventfd only when
//! the server may be asleep (`server/citadel/src/plugin/attention.rs`; the
//! handshake itself is model-checked in `proto/tests/loom_ring.rs`). Here
//! the real echo plugin, as a process and inline, answers while the
//! server's loop switches again and again between blocking before each
//! reply (one call at a time, with pauses) and never blocking (several
//! clients at once): every call is answered, and answered right.

use std::time::Duration;

use citadel_tests::echo_plugin_bin;
use citadel_tests::plugin_rig::{call, field, wait_until, Load, Rig};

fn rig() -> Rig {
    let bin = echo_plugin_bin();
    let module = bin.parent().unwrap().join("libcitadel_plugin_echo.so");
    Rig::start(&format!(
        "[[plugin]]\nname = \"echo\"\nexec = \"{}\"\ncores = \"none\"\n\
         [[plugin]]\nname = \"iecho\"\nplacement = \"inline\"\nexec = \"{}\"\ncores = \"none\"\n",
        bin.display(),
        module.display()
    ))
}

#[test]
fn replies_reach_a_loop_that_alternates_between_blocking_and_busy() {
    let rig = rig();
    let mut con = rig.server.client();
    for plugin in ["echo", "iecho"] {
        for round in 0..5 {
            // Idle between calls: the loop parks before each reply.
            for i in 0..20 {
                std::thread::sleep(Duration::from_millis(2));
                let payload = format!("{plugin}-{round}-{i}");
                assert_eq!(
                    call(&mut con, plugin, &payload).unwrap(),
                    payload.to_uppercase()
                );
            }
            // Busy: four clients keep calls out, the loop polls on.
            let before = field(&mut con, plugin, "processed");
            let load = Load::start_on(&rig, plugin, 4);
            wait_until("a burst of calls", Duration::from_secs(30), || {
                field(&mut con, plugin, "processed") >= before + 2000
            });
            assert!(load.finish() >= 2000);
        }
        assert_eq!(field(&mut con, plugin, "errors"), 0, "{plugin}");
        assert_eq!(field(&mut con, plugin, "timeouts"), 0, "{plugin}");
    }
}
