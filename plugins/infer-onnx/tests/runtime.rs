//! A bad runtime path (its own test binary: no runtime is loaded here).

use std::path::PathBuf;

use citadel_ocr::{OcrConfig, OcrEngine, OcrError};

fn runtime_err(lib: PathBuf) -> (PathBuf, String) {
    let cfg = OcrConfig {
        onnxruntime: Some(lib),
        ..OcrConfig::default()
    };
    match OcrEngine::load(&cfg) {
        Err(OcrError::Runtime { path, reason }) => (path, reason),
        other => panic!("expected Runtime, got {other:?}"),
    }
}

#[test]
fn bad_runtime_paths_are_runtime_errors() {
    let missing = PathBuf::from("/nonexistent/libonnxruntime.so");
    let (path, reason) = runtime_err(missing.clone());
    assert_eq!(path, missing);
    assert!(reason.contains("no such file"), "{reason}");

    // A file that is not a shared library.
    let junk = std::env::temp_dir().join(format!("citadel-ocr-junk-{}.so", std::process::id()));
    std::fs::write(&junk, b"not a library").expect("write");
    let (path, reason) = runtime_err(junk.clone());
    let _ = std::fs::remove_file(&junk);
    assert!(path.ends_with(junk.file_name().expect("name")), "{path:?}");
    assert!(reason.contains("failed to load"), "{reason}");
}
