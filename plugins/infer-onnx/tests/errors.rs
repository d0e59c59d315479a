//! Errors: bad images, missing models, a second runtime.

mod common;

use std::path::PathBuf;

use citadel_ocr::{Image, OcrConfig, OcrEngine, OcrError, PixelFormat};

fn bad(r: Result<Vec<citadel_ocr::TextLine>, OcrError>) -> String {
    match r {
        Err(OcrError::BadImage(m)) => m,
        other => panic!("expected BadImage, got {other:?}"),
    }
}

#[test]
fn bad_images_are_errors() {
    let mut ocr = common::engine(1);
    let px = vec![255u8; 100 * 50 * 3];
    let stride_small = Image {
        width: 100,
        height: 50,
        stride: 299,
        format: PixelFormat::Bgr24,
        pixels: &px,
    };
    assert!(bad(ocr.recognize(&stride_small)).contains("stride"));
    let short = Image::packed(100, 51, PixelFormat::Bgr24, &px);
    assert!(bad(ocr.recognize(&short)).contains("bytes"));
    assert!(bad(ocr.recognize(&Image::packed(0, 50, PixelFormat::Rgb24, &px))).contains("zero"));
    assert!(bad(ocr.recognize(&Image::packed(100, 0, PixelFormat::Gray8, &px))).contains("zero"));
    assert!(bad(ocr.recognize(&Image::packed(100, 50, PixelFormat::Gray8, &[]))).contains("bytes"));
    // One bad image fails the whole batch, naming it.
    let good = Image::packed(100, 50, PixelFormat::Bgr24, &px);
    let m = match ocr.recognize_batch(&[good, short]) {
        Err(OcrError::BadImage(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(m.starts_with("image 1"), "{m}");
}

#[test]
fn missing_model_dir_names_it() {
    let dir = PathBuf::from("/nonexistent/citadel-ocr-models");
    let cfg = OcrConfig {
        models: Some(dir.clone()),
        ..OcrConfig::default()
    };
    match OcrEngine::load(&cfg) {
        Err(e @ OcrError::Models { .. }) => {
            let OcrError::Models { dir: d, .. } = &e else {
                unreachable!()
            };
            assert_eq!(d, &dir);
            assert!(
                e.to_string().contains("/nonexistent/citadel-ocr-models"),
                "{e}"
            );
        }
        other => panic!("expected Models, got {other:?}"),
    }
}

#[test]
fn dir_without_the_models_is_a_models_error() {
    let dir = std::env::temp_dir().join(format!("citadel-ocr-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("ch_PP-OCRv4_det_infer.onnx"), b"not a model").expect("write");
    let cfg = OcrConfig {
        models: Some(dir.clone()),
        ..OcrConfig::default()
    };
    let r = OcrEngine::load(&cfg);
    let _ = std::fs::remove_dir_all(&dir);
    match r {
        Err(OcrError::Models { dir: d, reason }) => {
            assert_eq!(d, dir);
            assert!(reason.contains("rec"), "{reason}");
        }
        other => panic!("expected Models, got {other:?}"),
    }
}

#[test]
fn a_second_runtime_path_is_refused() {
    let _ocr = common::engine(1);
    let other = std::env::temp_dir().join(format!("citadel-ocr-other-{}.so", std::process::id()));
    std::fs::write(&other, b"x").expect("write");
    let cfg = OcrConfig {
        onnxruntime: Some(other.clone()),
        ..OcrConfig::default()
    };
    let r = OcrEngine::load(&cfg);
    let _ = std::fs::remove_file(&other);
    match r {
        Err(OcrError::Runtime { path, reason }) => {
            assert_eq!(path, other);
            assert!(reason.contains("already loaded"), "{reason}");
        }
        other => panic!("expected Runtime, got {other:?}"),
    }
}
