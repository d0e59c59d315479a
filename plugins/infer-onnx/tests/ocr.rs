//! End-to-end OCR with the real models and the real ONNX Runtime.

mod common;

use std::process::Command;

use citadel_ocr::{Image, OcrConfig, OcrEngine, PixelFormat};
use common::*;

const WANT: [&str; 3] = ["CITADEL 42", "Hello Pipeline", "frame 7"];

#[test]
fn reads_three_lines_in_order() {
    let mut ocr = engine(2);
    let raw = three_lines(PixelFormat::Bgr24);
    let lines = ocr.recognize(&raw.image()).expect("ocr");
    for l in &lines {
        eprintln!("{:?} {:.3} {:?}", l.text, l.score, l.bbox);
    }
    assert_eq!(texts(&lines), WANT);
    for l in &lines {
        assert!(l.score > 0.8, "{l:?}");
        let [tl, tr, br, bl] = l.bbox;
        assert!(
            tl[0] < tr[0] && bl[0] < br[0] && tl[1] < bl[1] && tr[1] < br[1],
            "clockwise from top-left: {l:?}"
        );
        assert!(l
            .bbox
            .iter()
            .all(|p| p[0] >= 0.0 && p[0] < 640.0 && p[1] >= 0.0 && p[1] < 360.0));
    }
    // "CITADEL 42" is drawn at (20, 30), 48 px high.
    let b = lines[0].bbox;
    assert!(
        b[0][0] < 30.0 && b[0][1] < 40.0 && b[2][1] > 65.0 && b[2][0] > 250.0,
        "{b:?}"
    );
}

#[test]
fn rgb_gray_and_padded_rows_read_the_same() {
    let mut ocr = engine(2);
    for format in [PixelFormat::Rgb24, PixelFormat::Gray8] {
        let raw = three_lines(format);
        assert_eq!(
            texts(&ocr.recognize(&raw.image()).expect("ocr")),
            WANT,
            "{format:?}"
        );
    }
    // The same BGR image with 64 bytes of junk after every row.
    let raw = three_lines(PixelFormat::Bgr24);
    let row = raw.w as usize * 3;
    let stride = row + 64;
    let mut padded = Vec::new();
    for r in raw.data.chunks_exact(row) {
        padded.extend_from_slice(r);
        padded.extend(std::iter::repeat_n(0x5a, 64));
    }
    let img = Image {
        width: raw.w,
        height: raw.h,
        stride: stride as u32,
        format: PixelFormat::Bgr24,
        pixels: &padded,
    };
    assert_eq!(
        ocr.recognize(&img).expect("ocr"),
        ocr.recognize(&raw.image()).expect("ocr")
    );
}

#[test]
fn reads_boxed_words_on_a_busy_background() {
    let mut ocr = engine(2);
    // (A white box with a 10 px border is tight: the detector splits
    // "frame 7" or "Hello Pipeline" at the space there, rapidocr too.)
    let lines = ocr.recognize(&busy("CITADEL 42").image()).expect("ocr");
    eprintln!("{lines:?}");
    assert!(texts(&lines).contains(&"CITADEL 42"), "{lines:?}");
}

#[test]
fn blank_image_has_no_lines() {
    let mut ocr = engine(1);
    let raw = render("color=c=white", 640, 360, &[], PixelFormat::Bgr24);
    assert!(ocr.recognize(&raw.image()).expect("ocr").is_empty());
    let gray = vec![0u8; 200 * 100];
    assert!(ocr
        .recognize(&Image::packed(200, 100, PixelFormat::Gray8, &gray))
        .expect("ocr")
        .is_empty());
}

#[test]
fn batch_equals_one_by_one() {
    let mut ocr = engine(2);
    let raws = [
        three_lines(PixelFormat::Bgr24),
        busy("CITADEL 42"),
        render("color=c=white", 320, 200, &[], PixelFormat::Bgr24),
        frame(3),
        three_lines(PixelFormat::Gray8),
        frame(7),
    ];
    let imgs: Vec<Image> = raws.iter().map(|r| r.image()).collect();
    let batch = ocr.recognize_batch(&imgs).expect("batch");
    assert_eq!(batch.len(), imgs.len());
    for (img, got) in imgs.iter().zip(&batch) {
        let single = ocr.recognize(img).expect("single");
        assert_eq!(texts(got), texts(&single));
        for (a, b) in got.iter().zip(&single) {
            assert_eq!(a.bbox, b.bbox);
            // Padding to a wider batch moves the scores a little.
            assert!((a.score - b.score).abs() < 0.02, "{a:?} vs {b:?}");
        }
    }
    assert_eq!(texts(&batch[0]), WANT);
    assert!(texts(&batch[1]).contains(&"CITADEL 42"), "{:?}", batch[1]);
    assert!(batch[2].is_empty());
    assert_eq!(texts(&batch[3]), ["frame 3", "Hello Pipeline"]);
    assert_eq!(texts(&batch[5]), ["frame 7", "Hello Pipeline"]);
    assert!(ocr.recognize_batch(&[]).expect("empty batch").is_empty());
    // All 16 lines in one recognition run: the same texts.
    let cfg = OcrConfig {
        rec_batch_size: 0,
        intra_threads: 2,
        ..OcrConfig::from_env_defaults()
    };
    let one_run = OcrEngine::load(&cfg)
        .expect("load")
        .recognize_batch(&imgs)
        .expect("batch");
    for (a, b) in one_run.iter().zip(&batch) {
        assert_eq!(texts(a), texts(b));
    }
}

#[test]
fn angle_classifier_turns_upside_down_lines() {
    let cfg = OcrConfig {
        use_angle_classifier: true,
        intra_threads: 2,
        ..OcrConfig::from_env_defaults()
    };
    let mut ocr = OcrEngine::load(&cfg).expect("load");
    let raw = three_lines(PixelFormat::Bgr24);
    assert_eq!(texts(&ocr.recognize(&raw.image()).expect("ocr")), WANT);
    // Turned by 180 degrees: every line is found and read the right way up.
    let mut turned = three_lines(PixelFormat::Bgr24);
    let px: Vec<[u8; 3]> = turned
        .data
        .chunks_exact(3)
        .rev()
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    turned.data = px.concat();
    let lines = ocr.recognize(&turned.image()).expect("ocr");
    let mut got = texts(&lines);
    got.sort_unstable();
    let mut want = WANT.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "{lines:?}");
}

/// The Python reference (rapidocr-onnxruntime, without its angle
/// classifier) on the same pixels: same texts, boxes within 2 px.
#[test]
fn matches_python_rapidocr() {
    let raw = three_lines(PixelFormat::Bgr24);
    let path = std::env::temp_dir().join(format!("citadel-ocr-{}.bgr", std::process::id()));
    std::fs::write(&path, &raw.data).expect("write");
    let code = format!(
        "import numpy as np, json\nfrom rapidocr_onnxruntime import RapidOCR\n\
         img = np.fromfile('{}', dtype=np.uint8).reshape({}, {}, 3)\n\
         r, _ = RapidOCR()(img, use_cls=False)\n\
         print(json.dumps([[x[1], [c for p in x[0] for c in p]] for x in r]))",
        path.display(),
        raw.h,
        raw.w
    );
    let out = Command::new("python3")
        .args(["-c", &code])
        .output()
        .expect("python3");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "rapidocr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout.lines().last().unwrap_or_default().to_string();
    eprintln!("python: {json}");
    let mut ocr = engine(2);
    let lines = ocr.recognize(&raw.image()).expect("ocr");
    // Minimal parse of [["text", [x0, y0, ...]], ...].
    let mut rest = json.as_str();
    for l in &lines {
        let start = rest.find("[\"").expect("a python line per rust line") + 2;
        let end = start + rest[start..].find('"').expect("text end");
        assert_eq!(&rest[start..end], l.text);
        let nums_start = end + rest[end..].find('[').expect("coords") + 1;
        let nums_end = nums_start + rest[nums_start..].find(']').expect("coords end");
        let nums: Vec<f32> = rest[nums_start..nums_end]
            .split(',')
            .map(|v| v.trim().parse().expect("number"))
            .collect();
        let ours: Vec<f32> = l.bbox.iter().flatten().copied().collect();
        for (a, b) in nums.iter().zip(&ours) {
            assert!((a - b).abs() <= 2.0, "box {ours:?} vs python {nums:?}");
        }
        rest = &rest[nums_end..];
    }
    assert!(
        rest.find("[\"").is_none(),
        "python found more lines: {json}"
    );
}
