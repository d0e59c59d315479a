//! Per-image OCR latency on 640x360 frames with two lines of text: one at a
//! time vs. 8 per `recognize_batch`, with 1 and 2 intra-op threads.
//!
//! `cargo run --release -p citadel-ocr --example ocr_bench [rounds] [max|min] [rec_batch_size]`
//! (`RUST_LOG=citadel_ocr=debug` for the det/rec split; needs `ffmpeg` and the onnxruntime / rapidocr_onnxruntime wheels).

use std::process::Command;
use std::time::Instant;

use citadel_ocr::{Image, LimitType, OcrConfig, OcrEngine, PixelFormat};

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const W: u32 = 640;
const H: u32 = 360;

fn frame(n: u32) -> Vec<u8> {
    let dt = |t: &str, y: u32| {
        format!("drawtext=fontfile={FONT}:text='{t}':fontsize=36:fontcolor=black:x=40:y={y}")
    };
    let vf = format!(
        "{},{}",
        dt(&format!("frame {n}"), 60),
        dt("Hello Pipeline", 220)
    );
    let out = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            &format!("color=c=white:size={W}x{H}"),
            "-vf",
            &vf,
        ])
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "bgr24", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success() && out.stdout.len() == (W * H * 3) as usize,
        "ffmpeg failed"
    );
    out.stdout
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // RUST_LOG=citadel_ocr=debug prints the detection / total time per call.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let frames: Vec<Vec<u8>> = (0..8).map(frame).collect();
    let imgs: Vec<Image> = frames
        .iter()
        .map(|f| Image::packed(W, H, PixelFormat::Bgr24, f))
        .collect();
    // `ocr_bench N max`: detector input limited to a 960 px longer side
    // instead of rapidocr's default (shorter side raised to 736).
    let limit_max = std::env::args().nth(2).is_some_and(|a| a == "max");
    // `ocr_bench N max|min B`: at most B lines per recognition run (0: all).
    let rec_batch: usize = std::env::args()
        .nth(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    println!("{W}x{H} frames, 2 lines each, {rounds} rounds of 8 images");
    for threads in [1, 2] {
        let mut cfg = OcrConfig {
            intra_threads: threads,
            ..OcrConfig::from_env_defaults()
        };
        cfg.rec_batch_size = rec_batch;
        if limit_max {
            (cfg.limit_type, cfg.max_side) = (LimitType::Max, 960);
        }
        let mut ocr = OcrEngine::load(&cfg)?;
        // Warm up (first runs allocate and pick kernels).
        let first = ocr.recognize_batch(&imgs)?;
        for img in &imgs {
            ocr.recognize(img)?;
        }
        let t = Instant::now();
        let mut single = Vec::new();
        for _ in 0..rounds {
            single = imgs
                .iter()
                .map(|i| ocr.recognize(i))
                .collect::<Result<Vec<_>, _>>()?;
        }
        let per_single = t.elapsed().as_secs_f64() * 1e3 / (rounds * imgs.len()) as f64;
        let t = Instant::now();
        let mut batched = Vec::new();
        for _ in 0..rounds {
            batched = ocr.recognize_batch(&imgs)?;
        }
        let per_batch = t.elapsed().as_secs_f64() * 1e3 / (rounds * imgs.len()) as f64;
        let words = |v: &Vec<Vec<citadel_ocr::TextLine>>| {
            v.iter()
                .map(|ls| {
                    ls.iter()
                        .map(|l| l.text.clone())
                        .collect::<Vec<_>>()
                        .join(" / ")
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(words(&single), words(&batched));
        assert_eq!(words(&first), words(&batched));
        println!(
            "intra_threads={threads}: single {per_single:.1} ms/image, batched(8) {per_batch:.1} ms/image  [{}]",
            words(&batched)[7]
        );
    }
    Ok(())
}
