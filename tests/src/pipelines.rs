//! Helpers for the pipeline tests: PIPELINE INFO and PLUGIN INFO as maps,
//! a stage's record count, a plugin's process ids.

use std::collections::HashMap;

use redis::Connection;

/// `<PLUGIN|PIPELINE> INFO <name>` as a map.
pub fn info(con: &mut Connection, what: &str, name: &str) -> HashMap<String, String> {
    let flat: Vec<String> = redis::cmd(what).arg("INFO").arg(name).query(con).unwrap();
    flat.chunks(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect()
}

/// A counter of `PIPELINE INFO <pipeline>`.
pub fn count(con: &mut Connection, pipeline: &str, field: &str) -> u64 {
    info(con, "PIPELINE", pipeline)[field].parse().unwrap()
}

/// Records stage `stage` of `pipeline` has handled (`records=` of its line).
pub fn stage_records(con: &mut Connection, pipeline: &str, stage: &str) -> u64 {
    let line = info(con, "PIPELINE", pipeline)[&format!("stage_{stage}")].clone();
    let field = line.split(' ').find_map(|f| f.strip_prefix("records="));
    field.expect("a records field").parse().unwrap()
}

/// The running processes of `plugin`.
pub fn pids(con: &mut Connection, plugin: &str) -> Vec<u32> {
    info(con, "PLUGIN", plugin)["pid"]
        .split(',')
        .filter_map(|p| p.parse().ok())
        .filter(|p| *p > 0)
        .collect()
}
