//! `citadel-infer-onnx`: the OCR stage of a video pipeline. Frames arrive
//! in place in its input ring (written there by the media stage); it
//! batches the frames waiting across requests (up to `--max-batch`), runs
//! PP-OCRv4 detection and recognition on ONNX Runtime with its pinned cores
//! as intra-op threads, and answers each frame with a result record
//! `{"frame":N,"pts_ms":T,"lines":[{"text":..,"score":..,"box":[[x,y],..]}]}`
//! (to the server, or to the next stage if there is one); `End` records
//! pass through. CPU by default; `--device cuda[:N]` selects the CUDA
//! execution provider (a build with the `cuda` feature and a CUDA
//! onnxruntime).

use std::fmt::Write;
use std::path::PathBuf;

use citadel_ocr::{ExecutionProvider, Image, LimitType, OcrConfig, OcrEngine, TextLine};
use citadel_plugin::{Options, Plugin, Replies, Reply, Request, ServeError};
use citadel_proto::pipeline::{message_type, FrameHeader, MessageType, ResultMessage};
use clap::Parser;

const STATUS_BAD_FRAME: u32 = 11;
const STATUS_INFERENCE: u32 = 12;

#[derive(Parser, Debug)]
#[command(
    about = "Citadel OCR stage: PP-OCRv4 on ONNX Runtime over frames from the previous stage"
)]
struct Args {
    /// Intra-op threads (0: one per CPU this process is pinned to).
    #[arg(long, env = "CITADEL_OCR_THREADS", default_value_t = 0)]
    threads: usize,
    /// Most frames handed to the model at once (across requests).
    #[arg(long, default_value_t = 8)]
    max_batch: usize,
    /// Directory with the PP-OCRv4 .onnx files (default: the installed
    /// rapidocr_onnxruntime wheel's models/).
    #[arg(long, env = "CITADEL_OCR_MODELS")]
    models: Option<PathBuf>,
    /// libonnxruntime.so (default: ORT_DYLIB_PATH, else the onnxruntime wheel's).
    #[arg(long, env = "CITADEL_OCR_RUNTIME")]
    onnxruntime: Option<PathBuf>,
    /// cpu, cuda or cuda:N.
    #[arg(long, env = "CITADEL_OCR_DEVICE", default_value = "cpu")]
    device: String,
    /// Longest side the detector sees (frames are scaled down to it).
    #[arg(long, default_value_t = 960)]
    max_side: u32,
}

fn main() -> Result<(), ServeError> {
    citadel_plugin::init_logging();
    let args = Args::parse();
    let config = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("citadel-infer-onnx: {e}");
            std::process::exit(2);
        }
    };
    let mut engine = match OcrEngine::load(&config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("citadel-infer-onnx: {e}");
            std::process::exit(1);
        }
    };
    let options = Options {
        max_batch: args.max_batch.max(1),
        ..Options::default()
    };
    let plugin = Plugin::from_env(options)?;
    tracing::info!(threads = config.intra_threads, device = %args.device, "OCR stage ready");
    plugin.serve_batch(|reqs, out| handle(&mut engine, reqs, out))
}

fn config(args: &Args) -> Result<OcrConfig, String> {
    let execution_provider = match args.device.as_str() {
        "cpu" => ExecutionProvider::Cpu,
        "cuda" => ExecutionProvider::Cuda { device_id: 0 },
        d => match d.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(device_id) => ExecutionProvider::Cuda { device_id },
            None => return Err(format!("--device {d:?}: cpu, cuda or cuda:N")),
        },
    };
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    Ok(OcrConfig {
        models: args.models.clone(),
        onnxruntime: args.onnxruntime.clone(),
        intra_threads: threads,
        execution_provider,
        max_side: args.max_side,
        limit_type: LimitType::Max,
        ..OcrConfig::from_env_defaults()
    })
}

/// One batch: every frame goes to the model in one call, every other
/// record is answered in its place.
fn handle(engine: &mut OcrEngine, reqs: &[Request<'_>], out: &mut Replies) {
    let mut frames: Vec<(usize, FrameHeader, Image<'_>)> = Vec::new();
    let mut answers: Vec<Option<Reply>> = Vec::with_capacity(reqs.len());
    for (i, req) in reqs.iter().enumerate() {
        let answer = match message_type(req.payload) {
            Ok(MessageType::End) => Some(Reply::ok(req.payload.to_vec())),
            Ok(MessageType::Frame) => match FrameHeader::decode(req.payload) {
                Ok((h, pixels)) => {
                    frames.push((i, h, image(&h, pixels)));
                    None
                }
                Err(e) => Some(Reply::error(STATUS_BAD_FRAME, e.to_string())),
            },
            Ok(other) => Some(Reply::error(
                STATUS_BAD_FRAME,
                format!("a {other:?} record is not a frame"),
            )),
            Err(e) => Some(Reply::error(STATUS_BAD_FRAME, e.to_string())),
        };
        answers.push(answer);
    }
    if !frames.is_empty() {
        let images: Vec<Image<'_>> = frames.iter().map(|f| f.2).collect();
        match engine.recognize_batch(&images) {
            Ok(results) => {
                for ((i, h, _), lines) in frames.iter().zip(results) {
                    answers[*i] = Some(result(h, &lines));
                }
            }
            Err(e) => {
                tracing::error!("inference failed: {e}");
                for (i, _, _) in &frames {
                    answers[*i] = Some(Reply::error(STATUS_INFERENCE, e.to_string()));
                }
            }
        }
    }
    for a in answers {
        out.push(a.unwrap_or_else(|| Reply::handler_failed("no answer")));
    }
}

fn image<'a>(h: &FrameHeader, pixels: &'a [u8]) -> Image<'a> {
    Image {
        width: h.width,
        height: h.height,
        stride: h.stride,
        format: h.format,
        pixels,
    }
}

/// The frame's result record.
fn result(h: &FrameHeader, lines: &[TextLine]) -> Reply {
    let mut json = format!(
        "{{\"frame\":{},\"pts_ms\":{},\"lines\":[",
        h.index, h.pts_ms
    );
    for (n, l) in lines.iter().enumerate() {
        if n > 0 {
            json.push(',');
        }
        json.push_str("{\"text\":");
        json_string(&mut json, &l.text);
        let _ = write!(json, ",\"score\":{:.4},\"box\":[", l.score);
        for (k, p) in l.bbox.iter().enumerate() {
            let sep = if k > 0 { "," } else { "" };
            let _ = write!(json, "{sep}[{},{}]", p[0].round(), p[1].round());
        }
        json.push_str("]}");
    }
    json.push_str("]}");
    let record = ResultMessage {
        index: h.index,
        pts_ms: h.pts_ms,
        json: json.as_bytes(),
    };
    Reply::ok(record.encode())
}

/// A JSON string literal.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
