//! Checks shared by the Rust client's end-to-end tests (one per
//! transport file): every method against the real server, and a plugin
//! configuration with a slow `echo` and a two-stage `text` pipeline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use citadel_client::{Client, Command, ErrorCode, Outcome, SetOptions, Ttl};

use crate::{echo_plugin_bin, text_stage_bin};

/// Every method once, with its edge cases (NX/XX, TTL states, a server
/// error, a batch with a failing op); the server must start empty.
pub fn every_method(client: &Client) {
    assert_eq!(client.get("missing").unwrap(), None);
    assert!(client.set("a", "1").unwrap());
    assert!(!client.set_with("a", "2", SetOptions::new().nx()).unwrap());
    assert!(!client.set_with("b", "2", SetOptions::new().xx()).unwrap());
    let ttl = SetOptions::new().ttl(Duration::from_secs(100));
    assert!(client.set_with("t", "x", ttl).unwrap());
    assert!(matches!(client.ttl("t").unwrap(), Ttl::Expires(d) if d > Duration::from_secs(90)));
    assert_eq!(client.ttl("a").unwrap(), Ttl::Persistent);
    assert_eq!(client.ttl("nope").unwrap(), Ttl::Missing);
    assert!(client.expire("a", Duration::from_secs(50)).unwrap());
    assert!(client.expire("a", Duration::ZERO).unwrap());
    assert_eq!(client.ttl("a").unwrap(), Ttl::Persistent);
    assert_eq!(client.incr("a", 41).unwrap(), 42);
    client.set("word", "abc").unwrap();
    let err = client.incr("word", 1).unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::NotInteger), "{err}");
    client.mset([("m1", "x"), ("m2", "y")]).unwrap();
    let got = client.mget(["m1", "none", "m2"]).unwrap();
    assert_eq!(got, vec![Some(b"x".to_vec()), None, Some(b"y".to_vec())]);
    assert_eq!(client.exists(["m1", "m2", "none"]).unwrap(), 2);
    let mut keys = Vec::new();
    let mut cursor = 0;
    loop {
        let page = client.scan(cursor, Some("m*"), 10).unwrap();
        keys.extend(page.keys);
        cursor = page.cursor;
        if cursor == 0 {
            break;
        }
    }
    keys.sort();
    assert_eq!(keys, vec![b"m1".to_vec(), b"m2".to_vec()]);
    assert_eq!(client.delete(["m1", "none"]).unwrap(), 1);
    assert!(!client.stats(None).unwrap().is_empty());
    let welcome = client.hello(&Default::default()).unwrap();
    assert_eq!(welcome.version, 1);
    assert!(welcome.server.starts_with("citadel"), "{}", welcome.server);
    let out = client
        .batch(&[
            Command::get(b"t"),
            Command::incr(b"word", 1),
            Command::incr(b"n", 3),
        ])
        .unwrap();
    assert!(matches!(&out[0], Ok(Outcome::Value(Some(v))) if v == b"x"));
    assert_eq!(
        out[1].as_ref().unwrap_err().server_code(),
        Some(ErrorCode::NotInteger)
    );
    assert!(matches!(out[2], Ok(Outcome::Int(3))));
}

/// Writes a config with the plugins `echo` (payload "SLEEP <ms>" answers
/// "SLEPT <ms>" after that long), `split` and `upper`, and the pipeline
/// `text` = split | upper; returns its path (for `--config`).
pub fn plugins_config(dir: &Path) -> PathBuf {
    let bin = text_stage_bin().display().to_string();
    let conf = format!(
        "[[plugin]]\nname = \"echo\"\nexec = \"{}\"\n\
         [[plugin]]\nname = \"split\"\nexec = \"{bin}\"\nargs = [\"--role\", \"split\"]\ncores = \"none\"\n\
         [[plugin]]\nname = \"upper\"\nexec = \"{bin}\"\nargs = [\"--role\", \"upper\"]\ncores = \"none\"\n\
         [[pipeline]]\nname = \"text\"\nstages = [\"split\", \"upper\"]\ntimeout-ms = 20000\n",
        echo_plugin_bin().display()
    );
    let path = dir.join("plugins.toml");
    std::fs::write(&path, conf).unwrap();
    path
}
