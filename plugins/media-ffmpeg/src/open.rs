//! Opening an input: limits, the demuxer over custom AVIO, the video stream and its facts.

use std::fs::File;
use std::sync::Once;

use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;
use ffmpeg_next::format::stream::Disposition;
use ffmpeg_next::{media, Rational};

use crate::avio::{Demuxer, Kind, Source};
use crate::{Input, MediaError, StreamInfo};

pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        crate::log::install();
        if let Err(e) = ffmpeg::init() {
            tracing::warn!("ffmpeg init: {e}");
        }
    });
}

pub(crate) fn ffmpeg_error(what: &str, e: ffmpeg::Error) -> MediaError {
    MediaError::Ffmpeg(format!("{what}: {}", crate::error::describe(e)))
}

/// An opened input with its video stream chosen.
pub(crate) struct Opened<'a> {
    pub(crate) demux: Demuxer<'a>,
    pub(crate) stream: usize,
    pub(crate) time_base: Rational,
    pub(crate) info: StreamInfo,
    /// The video's declared duration in `time_base` units, if the container gives one that
    /// is the video's own (a stream duration, or the file duration with one stream only).
    pub(crate) declared: Option<i64>,
}

pub(crate) fn open<'a>(
    input: Input<'a>,
    max_bytes: u64,
    max_pixels: u64,
) -> Result<Opened<'a>, MediaError> {
    init();
    crate::log::clear_last_error();
    let kind = match input {
        Input::Bytes(b) => Kind::Bytes(b),
        Input::Reader(r) => Kind::Reader(r),
        Input::Path(p) => Kind::File(File::open(p)?),
    };
    let source = Source::new(kind)?;
    match source.len() {
        0 => return Err(MediaError::Empty),
        len if len > max_bytes => {
            return Err(MediaError::TooLarge {
                len,
                max: max_bytes,
            })
        }
        _ => {}
    }
    let mut demux = Demuxer::open(source)?;
    // Sizes the container header already declares: refuse before decoding anything.
    if let Some(i) = video_stream(&demux.input) {
        check_size(&stream_info(&demux.input, i).1, max_pixels)?;
    }
    demux.find_stream_info(max_pixels)?;
    if demux.input.nb_streams() == 0 {
        let name = demux.input.format().name().to_string();
        return Err(if demux.confident {
            MediaError::Corrupt(format!(
                "the {name} data has no streams (truncated header?)"
            ))
        } else {
            MediaError::NotMedia(format!("no streams found (probed as {name})"))
        });
    }
    let stream = video_stream(&demux.input).ok_or(MediaError::NoVideoStream)?;
    let (time_base, info) = stream_info(&demux.input, stream);
    check_size(&info, max_pixels)?;
    let declared = declared_duration(&demux.input, stream);
    Ok(Opened {
        demux,
        stream,
        time_base,
        info,
        declared,
    })
}

fn check_size(info: &StreamInfo, max_pixels: u64) -> Result<(), MediaError> {
    check_pixels(info.width, info.height, max_pixels)
}

pub(crate) fn check_pixels(width: u32, height: u32, max_pixels: u64) -> Result<(), MediaError> {
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(MediaError::SourceTooLarge {
            width,
            height,
            max_pixels,
        });
    }
    Ok(())
}

/// The best video stream that is not an attached picture (cover art).
fn video_stream(input: &ffmpeg::format::context::Input) -> Option<usize> {
    let usable = |s: &ffmpeg::format::stream::Stream| {
        s.parameters().medium() == media::Type::Video
            && !s.disposition().contains(Disposition::ATTACHED_PIC)
    };
    if let Some(s) = input.streams().best(media::Type::Video) {
        if usable(&s) {
            return Some(s.index());
        }
    }
    input.streams().find(usable).map(|s| s.index())
}

fn declared_duration(input: &ffmpeg::format::context::Input, index: usize) -> Option<i64> {
    let s = input.stream(index)?;
    let tb = s.time_base();
    if s.duration() > 0 && s.duration() != ffi::AV_NOPTS_VALUE {
        return Some(s.duration());
    }
    if input.nb_streams() == 1 && input.duration() > 0 && tb.numerator() > 0 {
        let d = i128::from(input.duration()) * i128::from(tb.denominator())
            / (i128::from(tb.numerator()) * 1_000_000);
        return i64::try_from(d).ok().filter(|&d| d > 0);
    }
    None
}

pub(crate) fn to_ms(ts: i64, tb: Rational) -> i64 {
    if tb.denominator() == 0 {
        return 0;
    }
    let v = i128::from(ts) * 1000 * i128::from(tb.numerator()) / i128::from(tb.denominator());
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn stream_info(input: &ffmpeg::format::context::Input, index: usize) -> (Rational, StreamInfo) {
    let s = input
        .stream(index)
        .expect("stream index from the same context");
    let tb = s.time_base();
    let params = s.parameters();
    // SAFETY: codecpar of a live stream; plain integer fields.
    let (width, height) = unsafe {
        let p = params.as_ptr();
        ((*p).width.max(0) as u32, (*p).height.max(0) as u32)
    };
    let duration_ms = if s.duration() > 0 && s.duration() != ffi::AV_NOPTS_VALUE {
        to_ms(s.duration(), tb)
    } else if input.duration() > 0 {
        input.duration() / 1000 // AV_TIME_BASE is microseconds
    } else {
        0
    };
    let rate = s.avg_frame_rate();
    let frame_rate = if rate.denominator() > 0 && rate.numerator() > 0 {
        f64::from(rate)
    } else {
        0.0
    };
    let info = StreamInfo {
        container: input.format().name().to_string(),
        codec: params.id().name().to_string(),
        width,
        height,
        duration_ms,
        frame_rate,
        frames: s.frames().max(0) as u64,
    };
    (tb, info)
}
