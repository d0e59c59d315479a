//! `[[pipeline]]` tables: plugins chained stage to stage over shared-memory
//! rings (decode | infer), called with PIPELINE CALL, results cached.

use crate::setting::{identifier, positive};

crate::settings_table! {
    "Pipelines: [[plugin]]s chained like a unix pipe. The server sends each \
     call to the first stage; every stage writes its output straight into the \
     next stage's ring (frames never pass through the server); the last stage \
     answers. Any stage may answer early with an error. Each stage's \
     ring-capacity (in its [[plugin]]) sizes its input ring; a DATA input \
     larger than half the first stage's ring (up to 512 MB) is spooled to a file \
     beside the cache file that the stage reads. \
     A plugin is a stage of at most one pipeline. Example: \
     deploy/examples/video-ocr.toml. None by default.",
    Some("pipeline");

    NAME: String = {
        name: "name",
        example: "ocr",
        help: "PIPELINE CALL <name> ...; letters, digits, - and _",
        required: true,
        check: identifier,
    }
    STAGES: Vec<String> = {
        name: "stages",
        example: "[\"decode\", \"ocr\"]",
        help: "[[plugin]] names, first to last (at least one)",
        required: true,
        check: |s| if s.is_empty() { Err("stages must name at least one plugin".into()) } else { Ok(()) },
    }
    TIMEOUT_MS: u64 = {
        name: "timeout-ms",
        default: "60000",
        help: "a call not finished this long gets a timeout error",
        check: positive,
    }
    RESULT_TTL_MS: u64 = {
        name: "result-ttl-ms",
        default: "3600000",
        help: "results are cached this long, keyed by pipeline, options and the \
               input's content hash (0: not cached)",
    }
    MAX_INFLIGHT: u64 = {
        name: "max-inflight",
        default: "256",
        help: "calls in progress (all threads); more fail at once",
        check: positive,
    }
}
