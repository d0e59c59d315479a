//! A pipeline call's result key and its reply document.
//!
//! The reply is one JSON document (a bulk string):
//! `{"pipeline":"ocr","frames":3,"source":{...},"results":[{...},{...},{...}]}`
//! where `source` is the first stage's summary and `results` holds the
//! last stage's per-frame objects in frame order.

use xxhash_rust::xxh3::Xxh3;

use crate::plugin::{CallError, Outcome};

/// Where a call's result is cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultKey {
    /// xxh3-128 of the pipeline's name, the options and the input identity.
    pub hash: u128,
    /// `__pipeline:<name>:<hash in hex>`: an ordinary key of the cache
    /// (visible to SCAN, removable with DEL, evicted like any other).
    pub cache_key: Vec<u8>,
}

/// The key of `name`'s result for `options` (canonical text) and an input
/// identified by `source` (its kind) and `identity` (the content hash for
/// data and keys; path, size and mtime for files).
pub fn result_key(name: &str, options: &str, source: u8, identity: &[u8]) -> ResultKey {
    let mut h = Xxh3::new();
    for part in [name.as_bytes(), options.as_bytes(), &[source], identity] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    ResultKey::for_hash(name, h.digest128())
}

impl ResultKey {
    pub fn for_hash(name: &str, hash: u128) -> ResultKey {
        ResultKey {
            hash,
            cache_key: format!("__pipeline:{name}:{hash:032x}").into_bytes(),
        }
    }
}

/// The reply document of a finished call, or the error to answer with.
pub fn render(name: &str, outcome: Outcome) -> Result<Vec<u8>, String> {
    let out = match outcome {
        Outcome::Pipeline(out) => out,
        Outcome::Failed(e) => return Err(call_error(name, &e)),
        Outcome::Reply { .. } => {
            return Err(format!(
                "ERR pipeline '{name}': a stage sent a plain reply instead of results"
            ))
        }
    };
    let missing = (0..out.frames)
        .filter(|i| !out.results.contains_key(i))
        .count();
    if missing > 0 {
        return Err(format!(
            "ERR pipeline '{name}' lost the results of {missing} of {} frames",
            out.frames
        ));
    }
    let size: usize = out.results.values().map(|r| r.len() + 1).sum();
    let mut json = Vec::with_capacity(size + out.summary.len() + 64 + name.len());
    json.extend_from_slice(b"{\"pipeline\":\"");
    json.extend_from_slice(name.as_bytes());
    json.extend_from_slice(format!("\",\"frames\":{},\"source\":", out.frames).as_bytes());
    json.extend_from_slice(if out.summary.is_empty() {
        b"{}"
    } else {
        &out.summary
    });
    json.extend_from_slice(b",\"results\":[");
    for (n, r) in out.results.range(..out.frames).enumerate() {
        if n > 0 {
            json.push(b',');
        }
        json.extend_from_slice(r.1);
    }
    json.extend_from_slice(b"]}");
    Ok(json)
}

/// The client's error for a failed pipeline call.
pub fn call_error(name: &str, e: &CallError) -> String {
    format!("{} pipeline '{name}' {e}", e.reply_prefix())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::PipelineOutput;

    #[test]
    fn renders_results_in_frame_order_and_refuses_gaps() {
        let mut results = std::collections::BTreeMap::new();
        results.insert(1, b"{\"b\":1}".to_vec());
        results.insert(0, b"{\"a\":0}".to_vec());
        let out = PipelineOutput {
            frames: 2,
            summary: b"{\"codec\":\"h264\"}".to_vec(),
            results: results.clone(),
        };
        let json = render("ocr", Outcome::Pipeline(out)).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"pipeline":"ocr","frames":2,"source":{"codec":"h264"},"results":[{"a":0},{"b":1}]}"#
        );
        let gap = PipelineOutput {
            frames: 3,
            summary: Vec::new(),
            results,
        };
        let err = render("ocr", Outcome::Pipeline(gap)).unwrap_err();
        assert!(err.contains("1 of 3 frames"), "{err}");
        let err = render("ocr", Outcome::Failed(CallError::Timeout(5))).unwrap_err();
        assert!(
            err.starts_with("ERR pipeline 'ocr' did not answer within 5 ms"),
            "{err}"
        );
    }

    #[test]
    fn keys_differ_by_every_part() {
        let a = result_key("ocr", "select=all", 0, b"h1");
        assert_eq!(a, result_key("ocr", "select=all", 0, b"h1"));
        for b in [
            result_key("ocr2", "select=all", 0, b"h1"),
            result_key("ocr", "select=every:2", 0, b"h1"),
            result_key("ocr", "select=all", 1, b"h1"),
            result_key("ocr", "select=all", 0, b"h2"),
        ] {
            assert_ne!(a.hash, b.hash);
        }
        assert!(a.cache_key.starts_with(b"__pipeline:ocr:"));
    }
}
