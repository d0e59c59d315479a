//! The decode loop: decode, select, convert into the sink.

use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;
use ffmpeg_next::{codec, frame, Packet, Rational};
use tracing::debug;

use crate::error::describe;
use crate::open::{check_pixels, ffmpeg_error, open, to_ms};
use crate::scale::Scaler;
use crate::select::Selector;
use crate::{
    DecodeOptions, DecodeSummary, FrameInfo, FrameSink, Input, MediaError, Selection, StreamInfo,
};

/// The span of presentation time the video packets read cover, in stream time base units.
#[derive(Default)]
struct Span {
    first: Option<i64>,
    end: Option<i64>,
}

impl Span {
    fn add(&mut self, packet: &Packet, frame_step: i64) {
        if let Some(ts) = packet.pts().or(packet.dts()) {
            let d = if packet.duration() > 0 {
                packet.duration()
            } else {
                frame_step
            };
            self.first = Some(self.first.map_or(ts, |f| f.min(ts)));
            let end = ts.saturating_add(d);
            self.end = Some(self.end.map_or(end, |e| e.max(end)));
        }
    }

    fn covered(&self) -> Option<i64> {
        Some(self.end?.saturating_sub(self.first?))
    }
}

/// Opens the input and describes its video stream without decoding it.
pub fn probe(input: Input<'_>) -> Result<StreamInfo, MediaError> {
    let d = DecodeOptions::default();
    Ok(open(input, d.max_input_bytes, u64::MAX)?.info)
}

/// Decodes the selected frames of `input` into `sink`. See the crate docs.
pub fn decode(
    input: Input<'_>,
    options: &DecodeOptions,
    sink: &mut dyn FrameSink,
) -> Result<DecodeSummary, MediaError> {
    options.validate()?;
    let mut opened = open(input, options.max_input_bytes, options.max_source_pixels)?;
    let stream = opened
        .demux
        .input
        .stream(opened.stream)
        .expect("chosen stream");
    let params = stream.parameters();
    let codec_name = opened.info.codec.clone();
    let decoder_codec = ffmpeg::decoder::find(params.id())
        .ok_or_else(|| MediaError::UnsupportedCodec(codec_name.clone()))?;
    let mut ctx = codec::Context::from_parameters(params)
        .map_err(|e| ffmpeg_error("decoder parameters", e))?;
    // SAFETY: the context is not opened yet; plain option fields.
    unsafe {
        let c = ctx.as_mut_ptr();
        // FFmpeg's option range is 0..=INT_MAX.
        (*c).max_pixels = options.max_source_pixels.min(i32::MAX as u64) as i64;
        (*c).pkt_timebase = opened.time_base.into();
        (*c).thread_count = options.threads.min(64) as i32;
        if options.selection == Selection::Keyframes {
            (*c).skip_frame = ffi::AVDiscard::AVDISCARD_NONKEY;
        }
    }
    let mut decoder = ctx
        .decoder()
        .open_as(decoder_codec)
        .and_then(|d| d.video())
        .map_err(|e| MediaError::UnsupportedCodec(format!("{codec_name}: {}", describe(e))))?;
    debug!(codec = %codec_name, width = opened.info.width, height = opened.info.height, "decoding");

    let rate = opened.info.frame_rate;
    let mut run = Run {
        options,
        sink,
        selector: Selector::new(options.selection),
        scaler: Scaler::new(),
        frame: frame::Video::empty(),
        time_base: opened.time_base,
        frame_step: if rate > 0.0 { 1.0 / rate } else { 1.0 / 25.0 },
        last_seconds: None,
        selected: 0,
        decoded: 0,
        errors: 0,
        last_error: None,
    };

    let tb = opened.time_base;
    let frame_step_tb = if rate > 0.0 && tb.numerator() > 0 {
        (f64::from(tb.denominator()) / (f64::from(tb.numerator()) * rate)) as i64
    } else {
        0
    };
    let mut span = Span::default();
    let mut corrupt_packets = 0u64;
    let mut read_error = None;
    let mut stopped = false;
    while !stopped {
        let mut packet = Packet::empty();
        match packet.read(&mut opened.demux.input) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
        if packet.stream() != opened.stream {
            continue;
        }
        if packet.is_corrupt() {
            // E.g. mov/mp4 with its index intact but the sample data cut off.
            corrupt_packets += 1;
        } else {
            span.add(&packet, frame_step_tb);
        }
        if let Err(e) = decoder.send_packet(&packet) {
            run.decode_error(e)?;
        }
        stopped = run.drain(&mut decoder)?;
    }
    if !stopped {
        // Flush the frames the decoder still holds.
        if decoder.send_eof().is_ok() {
            run.drain(&mut decoder)?;
        }
    }
    if let Some(e) = opened.demux.avio.take_error() {
        return Err(MediaError::Io(e));
    }
    if run.decoded == 0 {
        // The decoder refuses frames over `max_pixels`; report the size it saw.
        check_pixels(decoder.width(), decoder.height(), options.max_source_pixels)?;
        return Err(MediaError::Corrupt(crate::log::with_detail(
            match (read_error, run.last_error) {
                (_, Some(e)) | (Some(e), None) => {
                    format!("no frame could be decoded: {}", describe(e))
                }
                (None, None) => "no video frames could be decoded".into(),
            },
        )));
    }
    if let (false, Some(e)) = (stopped, read_error) {
        return Err(MediaError::Corrupt(format!(
            "read error after {} decoded frames: {}",
            run.decoded,
            describe(e)
        )));
    }
    if !stopped && corrupt_packets > 0 {
        return Err(MediaError::Corrupt(format!(
            "damaged or truncated: {corrupt_packets} incomplete video packets"
        )));
    }
    if let (false, Some(declared), Some(covered)) = (stopped, opened.declared, span.covered()) {
        // The demuxer ran out of data well before the declared end: a truncated file.
        if covered < declared - declared / 10 {
            return Err(MediaError::Corrupt(format!(
                "truncated: the video data ends after {} ms of {} ms",
                to_ms(covered, tb),
                to_ms(declared, tb)
            )));
        }
    }
    Ok(DecodeSummary {
        frames: run.selected,
        decoded: run.decoded,
        hit_max_frames: stopped,
        decode_errors: run.errors,
        duration_ms: opened.info.duration_ms,
        source_width: opened.info.width,
        source_height: opened.info.height,
        codec: codec_name,
    })
}

struct Run<'o, 's> {
    options: &'o DecodeOptions,
    sink: &'s mut dyn FrameSink,
    selector: Selector,
    scaler: Scaler,
    frame: frame::Video,
    time_base: Rational,
    /// Seconds between frames, for frames without any timestamp.
    frame_step: f64,
    last_seconds: Option<f64>,
    selected: u32,
    decoded: u64,
    errors: u32,
    last_error: Option<ffmpeg::Error>,
}

impl Run<'_, '_> {
    /// Damaged data is skipped (and counted); running out of memory is not.
    fn decode_error(&mut self, e: ffmpeg::Error) -> Result<(), MediaError> {
        if let ffmpeg::Error::Other { errno } = e {
            if errno == ffi::ENOMEM {
                return Err(ffmpeg_error("decode", e));
            }
        }
        debug!("decode error: {e}");
        self.errors = self.errors.saturating_add(1);
        self.last_error = Some(e);
        Ok(())
    }

    /// Takes every frame the decoder has ready; `Ok(true)` once `max_frames` were delivered.
    fn drain(&mut self, decoder: &mut ffmpeg::decoder::Video) -> Result<bool, MediaError> {
        loop {
            match decoder.receive_frame(&mut self.frame) {
                Ok(()) => {
                    if self.on_frame()? {
                        return Ok(true);
                    }
                }
                Err(ffmpeg::Error::Eof) => return Ok(false),
                Err(ffmpeg::Error::Other { errno }) if errno == ffi::EAGAIN => return Ok(false),
                Err(e) => {
                    self.decode_error(e)?;
                    return Ok(false);
                }
            }
        }
    }

    fn on_frame(&mut self) -> Result<bool, MediaError> {
        let index = self.decoded;
        self.decoded += 1;
        let f = &self.frame;
        let (w, h) = (f.width(), f.height());
        check_pixels(w, h, self.options.max_source_pixels)?;
        let tb = self.time_base;
        let seconds = match f.timestamp().or(f.pts()) {
            Some(ts) if tb.denominator() != 0 => {
                ts as f64 * f64::from(tb.numerator()) / f64::from(tb.denominator())
            }
            _ => self.last_seconds.map_or(0.0, |s| s + self.frame_step),
        };
        self.last_seconds = Some(seconds);
        let key = f.is_key();
        if !self.selector.select(index, seconds, key) {
            return Ok(false);
        }
        let (out_w, out_h) = self.options.output_size(w, h);
        let format = self.options.pixel_format;
        let info = FrameInfo {
            index: self.selected,
            pts_ms: (seconds * 1000.0).round() as i64,
            width: out_w,
            height: out_h,
            stride: out_w * format.bytes_per_pixel(),
            pixel_format: format,
            keyframe: key,
        };
        let len = info.byte_len();
        let mut result = Ok(());
        let (scaler, frame) = (&mut self.scaler, &self.frame);
        self.sink.frame(&info, &mut |buf: &mut [u8]| {
            result = if buf.len() < len {
                Err(MediaError::Sink(crate::SinkError(format!(
                    "sink buffer of {} bytes is smaller than the frame ({len} bytes)",
                    buf.len()
                ))))
            } else {
                scaler.write(frame, out_w, out_h, format, &mut buf[..len])
            };
        })?;
        result?;
        self.selected += 1;
        Ok(self.selected >= self.options.max_frames)
    }
}
