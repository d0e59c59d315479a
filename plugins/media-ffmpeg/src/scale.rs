//! Writes a decoded frame into the sink's buffer: `sws_scale` with the destination pointer
//! set to the sink's slice (no intermediate frame), or a plain row copy when neither size nor
//! format changes.

use std::ffi::c_int;
use std::ptr;

use ffmpeg_next::ffi::{self, AVPixelFormat};
use ffmpeg_next::frame;

use crate::{MediaError, PixelFormat};

/// A cached swscale context (re-created only when the source or target changes).
pub(crate) struct Scaler {
    ctx: *mut ffi::SwsContext,
}

impl Drop for Scaler {
    fn drop(&mut self) {
        // SAFETY: `ctx` is null or came from sws_getCachedContext; freed once, here.
        unsafe { ffi::sws_freeContext(self.ctx) };
    }
}

/// The non-deprecated twin of a "J" (full range) YUV format, and whether it was one.
fn unj(f: AVPixelFormat) -> (AVPixelFormat, bool) {
    use AVPixelFormat::*;
    match f {
        AV_PIX_FMT_YUVJ420P => (AV_PIX_FMT_YUV420P, true),
        AV_PIX_FMT_YUVJ422P => (AV_PIX_FMT_YUV422P, true),
        AV_PIX_FMT_YUVJ444P => (AV_PIX_FMT_YUV444P, true),
        AV_PIX_FMT_YUVJ440P => (AV_PIX_FMT_YUV440P, true),
        AV_PIX_FMT_YUVJ411P => (AV_PIX_FMT_YUV411P, true),
        other => (other, false),
    }
}

impl Scaler {
    pub(crate) fn new() -> Self {
        Scaler {
            ctx: ptr::null_mut(),
        }
    }

    /// Writes `frame` as `dst_w` x `dst_h` packed `format` pixels into `dst`
    /// (`dst.len() == dst_w * dst_h * bpp`, rows `dst_w * bpp` bytes apart).
    pub(crate) fn write(
        &mut self,
        frame: &frame::Video,
        dst_w: u32,
        dst_h: u32,
        format: PixelFormat,
        dst: &mut [u8],
    ) -> Result<(), MediaError> {
        let (src_w, src_h) = (frame.width(), frame.height());
        let stride = dst_w as usize * format.bytes_per_pixel() as usize;
        assert_eq!(dst.len(), stride * dst_h as usize, "destination size");
        let src_fmt = AVPixelFormat::from(frame.format());
        if src_fmt == AVPixelFormat::AV_PIX_FMT_NONE || src_w == 0 || src_h == 0 {
            return Err(MediaError::Corrupt(
                "decoded frame has no format or size".into(),
            ));
        }
        // SAFETY: reading a field of a valid frame.
        let linesize0 = unsafe { (*frame.as_ptr()).linesize[0] };
        if src_fmt == av_format(format) && (src_w, src_h) == (dst_w, dst_h) && linesize0 > 0 {
            let src = frame.data(0);
            let src_stride = frame.stride(0);
            for (y, row) in dst.chunks_exact_mut(stride).enumerate() {
                row.copy_from_slice(&src[y * src_stride..y * src_stride + stride]);
            }
            return Ok(());
        }
        let (sws_src_fmt, was_j) = unj(src_fmt);
        let full_range = was_j || frame.color_range() == ffmpeg_next::color::Range::JPEG;
        let flags = if (src_w, src_h) == (dst_w, dst_h) {
            ffi::SWS_POINT
        } else {
            ffi::SWS_BILINEAR
        };
        // SAFETY: sizes are positive and bounded (checked by the caller against the limits);
        // the old context is reused or freed by sws_getCachedContext.
        self.ctx = unsafe {
            ffi::sws_getCachedContext(
                self.ctx,
                src_w as c_int,
                src_h as c_int,
                sws_src_fmt,
                dst_w as c_int,
                dst_h as c_int,
                av_format(format),
                flags as c_int,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null(),
            )
        };
        if self.ctx.is_null() {
            return Err(MediaError::UnsupportedCodec(format!(
                "cannot convert pixel format {src_fmt:?} ({src_w}x{src_h}) to {format} ({dst_w}x{dst_h})"
            )));
        }
        // SAFETY: `ctx` is valid. The coefficient tables are static; an index FFmpeg does not
        // know falls back to the default (BT.601). For non-YUV sources this is a no-op error.
        unsafe {
            let space = (*frame.as_ptr()).colorspace as c_int;
            ffi::sws_setColorspaceDetails(
                self.ctx,
                ffi::sws_getCoefficients(space),
                c_int::from(full_range),
                ffi::sws_getCoefficients(ffi::SWS_CS_DEFAULT as c_int),
                1,
                0,
                1 << 16,
                1 << 16,
            );
        }
        let dst_data: [*mut u8; 4] = [
            dst.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        ];
        let dst_stride: [c_int; 4] = [stride as c_int, 0, 0, 0];
        // SAFETY: the source planes and line sizes come from a decoded frame of `src_h` rows;
        // the destination is the sink's slice of exactly `dst_h` rows of `stride` bytes, the
        // single plane of a packed format.
        let rows = unsafe {
            let f = frame.as_ptr();
            ffi::sws_scale(
                self.ctx,
                (*f).data.as_ptr() as *const *const u8,
                (*f).linesize.as_ptr(),
                0,
                src_h as c_int,
                dst_data.as_ptr(),
                dst_stride.as_ptr(),
            )
        };
        if rows != dst_h as c_int {
            return Err(MediaError::Ffmpeg(format!(
                "sws_scale wrote {rows} of {dst_h} rows"
            )));
        }
        Ok(())
    }
}

/// FFmpeg's name for a packed output format.
fn av_format(format: PixelFormat) -> AVPixelFormat {
    match format {
        PixelFormat::Rgb24 => AVPixelFormat::AV_PIX_FMT_RGB24,
        PixelFormat::Bgr24 => AVPixelFormat::AV_PIX_FMT_BGR24,
        PixelFormat::Gray8 => AVPixelFormat::AV_PIX_FMT_GRAY8,
    }
}
