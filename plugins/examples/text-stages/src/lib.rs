//! `citadel-text-stage --role split|upper`: a two-stage text pipeline with
//! the shape of a video one. One source, two placements: the binary
//! (`main.rs`) runs a stage as a process, the `cdylib`
//! (libcitadel_text_stages.so) inline in the server (`args` from the
//! `[[plugin]]` table); both run [`run`]. `split` is a first stage: its input (DATA, a
//! KEY read in place from the cache file, or a FILE) is text, and each
//! selected line becomes one gray8 "frame" (1 pixel high) written in place
//! into the next stage's ring, then an `End`. `upper` turns each frame into
//! a result `{"frame":N,"text":"LINE"}` and passes the `End` on.
//!
//! Test switches: `--crash-word W` aborts the process the first time it
//! handles a record containing W (split: after emitting half the lines);
//! `--delay-ms` sleeps per record; an input starting with "BAD" is refused
//! by `split` with an error reply and one starting with "NOTHING" is
//! answered by `split` with an empty final result (the next stage never
//! sees either).

use std::time::Duration;

use citadel_plugin::{Context, Emitter, Options, Reply, Request, ServeError};
use citadel_proto::pipeline::{
    message_type, Call, CallOptions, End, FrameHeader, MessageType, PixelFormat, ResultMessage,
    Selection, SourceKind,
};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "A text pipeline stage (split or upper) for tests and demonstrations")]
struct Args {
    /// split (first stage) or upper (a later stage).
    #[arg(long)]
    role: String,
    /// Abort on the first delivery of a record containing this word.
    #[arg(long)]
    crash_word: Option<String>,
    /// Sleep this long per record.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// The cache file KEY inputs are read from (the server sets it).
    #[arg(skip)]
    cache_file: Option<String>,
}

citadel_plugin::export_inline!(run);

/// Why the stage does not start.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Args(#[from] clap::Error),
    #[error("--role must be split or upper, not {0:?}")]
    Role(String),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The stage, for both placements.
pub fn run(ctx: Context) -> Result<(), StageError> {
    citadel_plugin::init_logging();
    let argv = std::iter::once("citadel-text-stage".to_string()).chain(ctx.args());
    let mut args = Args::try_parse_from(argv)?;
    args.cache_file = ctx.var("CITADEL_CACHE_FILE");
    if !matches!(args.role.as_str(), "split" | "upper") {
        return Err(StageError::Role(args.role));
    }
    let plugin = ctx.plugin(Options::default())?;
    let served = if args.role == "split" {
        plugin.serve_stage(|req, out| split(&args, req, out))
    } else {
        plugin.serve(|req| upper(&args, req))
    };
    Ok(served?)
}

fn crash_check(args: &Args, req: &Request<'_>, text: &[u8]) -> bool {
    let Some(word) = &args.crash_word else {
        return false;
    };
    req.attempt == 1 && text.windows(word.len()).any(|w| w == word.as_bytes())
}

/// The input's bytes: in the record, read from the cache file, or a file.
fn input(args: &Args, call: &Call<'_>) -> Result<Vec<u8>, String> {
    match call.source {
        SourceKind::Data => Ok(call.input.to_vec()),
        SourceKind::Path => {
            let path = String::from_utf8_lossy(call.input).into_owned();
            std::fs::read(&path).map_err(|e| format!("{path}: {e}"))
        }
        SourceKind::Key => {
            let (hash, key) = call.input.split_at(8.min(call.input.len()));
            let file = args.cache_file.as_deref().ok_or("no cache file")?;
            let reader =
                citadel_cache::CacheReader::open(file.as_ref()).map_err(|e| e.to_string())?;
            let view = reader
                .get(key)
                .map_err(|e| e.to_string())?
                .ok_or("the key is gone")?;
            let mut value = vec![0u8; view.len() as usize];
            view.read_at(0, &mut value);
            if !view.still_valid() || hash != view.content_hash().unwrap_or(0).to_le_bytes() {
                return Err("the value changed while it was read".into());
            }
            Ok(value)
        }
    }
}

fn split(args: &Args, req: &Request<'_>, out: &mut Emitter<'_>) -> Option<Reply> {
    let call = match Call::decode(req.payload) {
        Ok(c) => c,
        Err(e) => return Some(Reply::error(1, e.to_string())),
    };
    let options = match CallOptions::parse(call.options) {
        Ok(o) => o,
        Err(e) => return Some(Reply::error(1, e.to_string())),
    };
    let text = match input(args, &call) {
        Ok(t) => t,
        Err(e) => return Some(Reply::error(1, format!("cannot read the input: {e}"))),
    };
    if text.starts_with(b"BAD") {
        return Some(Reply::error(1, "undecodable input"));
    }
    if text.starts_with(b"NOTHING") {
        // Answered here: the next stage never sees the call.
        let end = End {
            frames: 0,
            json: b"{\"lines\":0}",
        };
        return Some(Reply::final_answer(end.encode()));
    }
    let step = match options.selection {
        Selection::EveryNth(n) => n as usize,
        _ => 1,
    };
    let lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .step_by(step)
        .take(options.max_frames as usize)
        .collect();
    let crash = crash_check(args, req, &text);
    for (i, line) in lines.iter().enumerate() {
        if crash && i == lines.len() / 2 {
            std::process::abort();
        }
        std::thread::sleep(Duration::from_millis(args.delay_ms));
        let h = FrameHeader {
            index: i as u32,
            pts_ms: i as i64 * 1000,
            width: line.len() as u32,
            height: 1,
            stride: line.len() as u32,
            format: PixelFormat::Gray8,
            keyframe: i == 0,
        };
        let written = out.emit_with(h.record_len(), |buf| {
            h.write(buf);
            buf[citadel_proto::pipeline::FRAME_HEADER_LEN..].copy_from_slice(line);
        });
        if let Err(e) = written {
            return Some(Reply::error(1, e.to_string()));
        }
    }
    let summary = format!("{{\"lines\":{}}}", lines.len());
    let end = End {
        frames: lines.len() as u32,
        json: summary.as_bytes(),
    };
    if let Err(e) = out.emit(&end.encode()) {
        return Some(Reply::error(1, e.to_string()));
    }
    None
}

fn upper(args: &Args, req: &Request<'_>) -> Reply {
    std::thread::sleep(Duration::from_millis(args.delay_ms));
    match message_type(req.payload) {
        Ok(MessageType::End) => Reply::ok(req.payload.to_vec()),
        Ok(MessageType::Frame) => match FrameHeader::decode(req.payload) {
            Ok((h, pixels)) => {
                if crash_check(args, req, pixels) {
                    std::process::abort();
                }
                let text = String::from_utf8_lossy(pixels).to_uppercase();
                let json = format!("{{\"frame\":{},\"text\":{:?}}}", h.index, text);
                let r = ResultMessage {
                    index: h.index,
                    pts_ms: h.pts_ms,
                    json: json.as_bytes(),
                };
                Reply::ok(r.encode())
            }
            Err(e) => Reply::error(1, e.to_string()),
        },
        Ok(other) => Reply::error(1, format!("unexpected {other:?} record")),
        Err(e) => Reply::error(1, e.to_string()),
    }
}
