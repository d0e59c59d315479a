//! Crash consistency: a writer process is killed with SIGKILL at random points
//! in the middle of writes, many times; after each kill the file is attached
//! again and every key is read back. No torn or misplaced value may be served.

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use common::{value_matches, TempCache};

const MEMORY: u64 = 32 << 20;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kill_9_mid_write_never_serves_torn_values() {
    let t = TempCache::new();
    let mut rng = 0x1234_5678u64;
    let mut verified = 0u64;
    for round in 0..12u32 {
        let child = Command::new(env!("CARGO_BIN_EXE_citadel-cache-torture"))
            .args([t.path.to_str().unwrap(), &MEMORY.to_string(), "2"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start torture writer");
        let mut child = KillOnDrop(child);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(150 + rng % 400));
        child.0.kill().expect("SIGKILL");
        child.0.wait().unwrap();

        let (cache, report) = t.open(MEMORY);
        assert!(report.warm && !report.clean, "round {round}: {report:?}");
        let mut h = cache.handle().unwrap();
        h.set_clock(citadel_cache::unix_millis());
        let mut keys = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = h.scan(cursor, 500, |item| keys.push(item.key().to_vec()));
            if cursor == 0 {
                break;
            }
        }
        assert!(!keys.is_empty(), "round {round}: the writer wrote nothing?");
        for key in &keys {
            let value = h.get(key, |item| {
                let mut v = Vec::new();
                item.write_value_to(&mut v);
                v
            });
            if let Some(value) = value {
                assert!(
                    value_matches(key, &value),
                    "round {round}: torn or wrong value for {}",
                    String::from_utf8_lossy(key)
                );
                verified += 1;
            }
        }
        // Writes after recovery work, and every other round shuts down cleanly.
        h.set(
            b"after-crash",
            &common::value_for(b"after-crash", round as u64, 64),
            None,
        )
        .unwrap();
        drop(h);
        if round.is_multiple_of(2) {
            cache.close();
        }
    }
    assert!(verified > 1000, "only {verified} values verified");
}
