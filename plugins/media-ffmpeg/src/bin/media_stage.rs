//! `citadel-media-ffmpeg`: the first stage of a video pipeline. A resident
//! FFmpeg decoder, pinned to its cores by the server, serving PIPELINE
//! CALLs: the input is video bytes in the request (read in place from the
//! request ring), a key of the cache (the value is read in place from the
//! cache file, mapped read-only: the compute goes to the data), or a file.
//! Each selected frame is scaled and converted by `sws_scale` straight
//! into a record reserved in the next stage's ring (no JPEG, no copy), then
//! an `End` record carries the count and a summary. A video that cannot be
//! decoded is answered directly to the server with an error; the next
//! stage never sees it.

use std::path::Path;

use citadel_cache::{CacheReader, ValueView};
use citadel_media::{
    decode, DecodeOptions, DecodeSummary, FrameInfo, FrameSink, Input, ReadAt, SinkError,
};
use citadel_plugin::{Emitter, Options, Plugin, Reply, Request, ServeError};
use citadel_proto::pipeline::{self as wire, Call, CallOptions, End, FrameHeader, SourceKind};
use clap::Parser;

/// Error status of a reply for an input this stage cannot use.
const STATUS_BAD_INPUT: u32 = 10;

#[derive(Parser, Debug)]
#[command(about = "Citadel media stage: decodes video with FFmpeg into the next stage's ring")]
struct Args {
    /// Largest input accepted (bytes); larger ones get an error.
    #[arg(long, env = "CITADEL_MEDIA_MAX_INPUT", default_value_t = 4 << 30)]
    max_input_bytes: u64,
    /// Largest coded picture accepted (width x height).
    #[arg(long, default_value_t = 8192 * 8192)]
    max_source_pixels: u64,
    /// FFmpeg decoder threads (0: one per core this process may use).
    #[arg(long, default_value_t = 0)]
    threads: u32,
    /// The cache file (for KEY inputs); the server sets CITADEL_CACHE_FILE.
    #[arg(long, env = "CITADEL_CACHE_FILE")]
    cache_file: Option<std::path::PathBuf>,
}

fn main() -> Result<(), ServeError> {
    citadel_plugin::init_logging();
    let args = Args::parse();
    let plugin = Plugin::from_env(Options::default())?;
    tracing::info!(pairs = plugin.pairs(), "media stage ready");
    let mut cache: Option<CacheReader> = None;
    plugin.serve_stage(|req, out| match handle(&args, &mut cache, req, out) {
        Ok(()) => None,
        Err(e) => {
            tracing::info!(id = req.id, "refused: {e}");
            Some(Reply::error(STATUS_BAD_INPUT, e))
        }
    })
}

fn handle(
    args: &Args,
    cache: &mut Option<CacheReader>,
    req: &Request<'_>,
    out: &mut Emitter<'_>,
) -> Result<(), String> {
    let call = Call::decode(req.payload).map_err(|e| e.to_string())?;
    let opts = CallOptions::parse(call.options).map_err(|e| e.to_string())?;
    let options = decode_options(args, &opts);
    let mut sink = RingSink { out };
    let summary = match call.source {
        SourceKind::Data => decode(Input::Bytes(call.input), &options, &mut sink),
        SourceKind::Path => {
            let path = std::str::from_utf8(call.input).map_err(|_| "the path is not UTF-8")?;
            decode(Input::Path(Path::new(path)), &options, &mut sink)
        }
        SourceKind::Key => return decode_key(args, cache, &call, &options, sink),
    };
    finish(summary.map_err(|e| e.to_string())?, sink.out)
}

/// A cache value, decoded where it lies. The server sent the content hash
/// it keyed the result with; the value must still have it, and must not
/// change while it is decoded.
fn decode_key(
    args: &Args,
    cache: &mut Option<CacheReader>,
    call: &Call<'_>,
    options: &DecodeOptions,
    mut sink: RingSink<'_, '_>,
) -> Result<(), String> {
    if call.input.len() < 8 {
        return Err("a KEY call without its content hash".into());
    }
    let (hash, key) = call.input.split_at(8);
    let reader = match cache {
        Some(r) => r,
        None => {
            let file = args.cache_file.as_ref().ok_or("no cache file configured")?;
            let opened = CacheReader::open(file).map_err(|e| e.to_string())?;
            cache.insert(opened)
        }
    };
    let view = reader
        .get(key)
        .map_err(|e| e.to_string())?
        .ok_or("the key no longer exists")?;
    if view.content_hash().map(u64::to_le_bytes) != Some(hash.try_into().unwrap_or_default()) {
        return Err("the key's value changed since the call was made; call again".into());
    }
    let mut source = ViewSource { view };
    let summary = decode(Input::Reader(&mut source), options, &mut sink);
    let summary = summary.map_err(|e| e.to_string())?;
    if !source.view.still_valid() {
        return Err("the key's value changed while it was decoded; call again".into());
    }
    finish(summary, sink.out)
}

fn finish(summary: DecodeSummary, out: &mut Emitter<'_>) -> Result<(), String> {
    let json = format!(
        "{{\"codec\":\"{}\",\"width\":{},\"height\":{},\"duration_ms\":{},\"decoded\":{},\"selected\":{},\"decode_errors\":{},\"truncated_at_max_frames\":{}}}",
        summary.codec.replace(['"', '\\'], ""),
        summary.source_width,
        summary.source_height,
        summary.duration_ms,
        summary.decoded,
        summary.frames,
        summary.decode_errors,
        summary.hit_max_frames
    );
    let end = End {
        frames: summary.frames,
        json: json.as_bytes(),
    };
    out.emit(&end.encode()).map_err(|e| e.to_string())
}

fn decode_options(args: &Args, o: &CallOptions) -> DecodeOptions {
    DecodeOptions {
        selection: o.selection,
        width: (o.width > 0).then_some(o.width),
        height: (o.height > 0).then_some(o.height),
        pixel_format: o.format,
        max_frames: o.max_frames,
        max_input_bytes: args.max_input_bytes,
        max_source_pixels: args.max_source_pixels,
        threads: args.threads,
    }
}

/// Frames go straight into records of the next stage's ring.
struct RingSink<'e, 'o> {
    out: &'e mut Emitter<'o>,
}

impl FrameSink for RingSink<'_, '_> {
    fn frame(
        &mut self,
        info: &FrameInfo,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), SinkError> {
        let header = FrameHeader {
            index: info.index,
            pts_ms: info.pts_ms,
            width: info.width,
            height: info.height,
            stride: info.stride,
            format: info.pixel_format,
            keyframe: info.keyframe,
        };
        self.out
            .emit_with(header.record_len(), |record| {
                header.write(record);
                fill(&mut record[wire::FRAME_HEADER_LEN..]);
            })
            .map_err(|e| SinkError::new(e.to_string()))
    }
}

/// A cache value as FFmpeg's input: copied out of the mapping in the
/// pieces FFmpeg asks for.
struct ViewSource<'r> {
    view: ValueView<'r>,
}

impl ReadAt for ViewSource<'_> {
    fn len(&self) -> u64 {
        self.view.len()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(self.view.read_at(offset, buf))
    }
}
