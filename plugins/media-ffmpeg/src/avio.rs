//! Custom AVIO: FFmpeg reads the input through `read`/`seek` callbacks over a byte slice, a
//! [`ReadAt`] or an open file, so nothing is copied whole and no temp file is written. Also
//! opens the demuxer on top of it ([`Demuxer`]).

use std::ffi::{c_int, c_void, CStr};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;

use crate::error::describe;
use crate::log::with_detail;
use crate::MediaError;

/// Random-access source of bytes (a value in the cache's shared memory, copied out in pieces).
pub trait ReadAt {
    /// Total length in bytes.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads up to `buf.len()` bytes at `offset`; `Ok(0)` means end of input.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

impl ReadAt for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(copy_at(self, offset, buf))
    }
}

fn copy_at(src: &[u8], offset: u64, buf: &mut [u8]) -> usize {
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(src.len());
    let n = buf.len().min(src.len() - start);
    buf[..n].copy_from_slice(&src[start..start + n]);
    n
}

pub(crate) enum Kind<'a> {
    Bytes(&'a [u8]),
    Reader(&'a mut dyn ReadAt),
    File(File),
}

/// The state behind the AVIO `opaque` pointer.
pub(crate) struct Source<'a> {
    kind: Kind<'a>,
    len: u64,
    pos: u64,
    /// The first I/O error (or reader panic), reported instead of FFmpeg's generic code.
    error: Option<io::Error>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(kind: Kind<'a>) -> io::Result<Self> {
        let len = match &kind {
            Kind::Bytes(b) => <[u8]>::len(b) as u64,
            Kind::Reader(r) => r.len(),
            Kind::File(f) => f.metadata()?.len(),
        };
        Ok(Source {
            kind,
            len,
            pos: 0,
            error: None,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.len - self.pos).unwrap_or(usize::MAX));
        let buf = &mut buf[..want];
        let n = match &mut self.kind {
            Kind::Bytes(b) => copy_at(b, self.pos, buf),
            Kind::Reader(r) => loop {
                match r.read_at(self.pos, buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?.min(want),
                }
            },
            Kind::File(f) => {
                f.seek(SeekFrom::Start(self.pos))?;
                loop {
                    match f.read(buf) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        other => break other?,
                    }
                }
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

const AVIO_BUFFER: usize = 64 * 1024;

unsafe extern "C" fn read_cb(opaque: *mut c_void, buf: *mut u8, size: c_int) -> c_int {
    // SAFETY: `opaque` is the `Source` that `Avio` boxed and keeps alive (and does not touch)
    // while FFmpeg runs; FFmpeg hands out a writable buffer of `size` bytes.
    let (src, buf) = unsafe {
        (
            &mut *(opaque as *mut Source<'_>),
            std::slice::from_raw_parts_mut(buf, usize::try_from(size).unwrap_or(0)),
        )
    };
    if buf.is_empty() {
        return 0;
    }
    match catch_unwind(AssertUnwindSafe(|| src.read(buf))) {
        Ok(Ok(0)) => ffi::AVERROR_EOF,
        Ok(Ok(n)) => n as c_int,
        Ok(Err(e)) => {
            src.error.get_or_insert(e);
            ffi::AVERROR(ffi::EIO)
        }
        Err(_) => {
            src.error
                .get_or_insert(io::Error::other("the input reader panicked"));
            ffi::AVERROR(ffi::EIO)
        }
    }
}

unsafe extern "C" fn seek_cb(opaque: *mut c_void, offset: i64, whence: c_int) -> i64 {
    // SAFETY: as in `read_cb`.
    let src = unsafe { &mut *(opaque as *mut Source<'_>) };
    let len = src.len as i64;
    let base = match whence & !(ffi::AVSEEK_FORCE as c_int) {
        w if w == ffi::AVSEEK_SIZE as c_int => return len,
        libc_seek::SET => 0,
        libc_seek::CUR => src.pos as i64,
        libc_seek::END => len,
        _ => return i64::from(ffi::AVERROR(ffi::EINVAL)),
    };
    match base.checked_add(offset) {
        Some(p) if p >= 0 => {
            src.pos = p as u64;
            p
        }
        _ => i64::from(ffi::AVERROR(ffi::EINVAL)),
    }
}

mod libc_seek {
    pub const SET: i32 = 0;
    pub const CUR: i32 = 1;
    pub const END: i32 = 2;
}

/// Owns the `AVIOContext`, its buffer and the boxed [`Source`]; frees all three on drop.
pub(crate) struct Avio<'a> {
    ctx: *mut ffi::AVIOContext,
    source: *mut Source<'a>,
    _borrow: PhantomData<&'a mut ()>,
}

impl<'a> Avio<'a> {
    pub(crate) fn new(source: Source<'a>) -> Result<Self, MediaError> {
        let mut avio = Avio {
            ctx: ptr::null_mut(),
            source: Box::into_raw(Box::new(source)),
            _borrow: PhantomData,
        };
        // SAFETY: plain allocation; checked for null below.
        let buffer = unsafe { ffi::av_malloc(AVIO_BUFFER) } as *mut u8;
        if buffer.is_null() {
            return Err(MediaError::Ffmpeg("out of memory".into()));
        }
        // SAFETY: `buffer` was allocated with av_malloc (AVIO may reallocate it; `Drop` frees
        // whatever `ctx.buffer` holds then); `source` outlives the context (freed after it in
        // `Drop`); the callbacks match the signatures FFmpeg expects.
        avio.ctx = unsafe {
            ffi::avio_alloc_context(
                buffer,
                AVIO_BUFFER as c_int,
                0,
                avio.source as *mut c_void,
                Some(read_cb),
                None,
                Some(seek_cb),
            )
        };
        if avio.ctx.is_null() {
            // SAFETY: the context did not take the buffer; free it here.
            unsafe { ffi::av_free(buffer as *mut c_void) };
            return Err(MediaError::Ffmpeg("out of memory".into()));
        }
        Ok(avio)
    }

    /// The first I/O error the callbacks saw, if any.
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        // SAFETY: FFmpeg is not running (we hold `&mut self`), so nothing else uses the source.
        unsafe { (*self.source).error.take() }
    }
}

impl Drop for Avio<'_> {
    fn drop(&mut self) {
        if !self.ctx.is_null() {
            // SAFETY: `ctx` came from avio_alloc_context and no format context uses it any more
            // (`Demuxer` drops its input first); its current buffer is av_malloc'ed.
            unsafe {
                ffi::av_freep(ptr::addr_of_mut!((*self.ctx).buffer) as *mut c_void);
                ffi::avio_context_free(&mut self.ctx);
            }
        }
        // SAFETY: `source` came from Box::into_raw in `new` and is freed only here.
        drop(unsafe { Box::from_raw(self.source) });
    }
}

/// Refuses every nested open (playlists, external references): the input is one value only.
unsafe extern "C" fn deny_io_open(
    _s: *mut ffi::AVFormatContext,
    _pb: *mut *mut ffi::AVIOContext,
    _url: *const std::ffi::c_char,
    _flags: c_int,
    _options: *mut *mut ffi::AVDictionary,
) -> c_int {
    ffi::AVERROR(ffi::EPERM)
}

/// An opened demuxer over custom AVIO. Field order matters: the format context is closed
/// before the AVIO context it reads from is freed.
pub(crate) struct Demuxer<'a> {
    pub(crate) input: ffmpeg::format::context::Input,
    pub(crate) avio: Avio<'a>,
    /// The format probe was confident (score >= 50): the data looked like this container.
    pub(crate) confident: bool,
}

impl<'a> Demuxer<'a> {
    /// Probes the format and reads the header (not the stream info; see `find_stream_info`).
    pub(crate) fn open(source: Source<'a>) -> Result<Self, MediaError> {
        let mut avio = Avio::new(source)?;
        let mut fmt: *const ffi::AVInputFormat = ptr::null();
        // SAFETY: `avio.ctx` is a valid read context; `fmt` receives a static format pointer.
        let score = unsafe {
            ffi::av_probe_input_buffer2(avio.ctx, &mut fmt, ptr::null(), ptr::null_mut(), 0, 0)
        };
        if score < 0 || fmt.is_null() {
            if let Some(e) = avio.take_error() {
                return Err(MediaError::Io(e));
            }
            return Err(MediaError::NotMedia(describe(ffmpeg::Error::from(
                score.min(-1),
            ))));
        }
        // SAFETY: `fmt` is a registered demuxer; its name is a static C string.
        let name = unsafe { CStr::from_ptr((*fmt).name) }
            .to_string_lossy()
            .into_owned();

        // SAFETY: allocation, checked for null.
        let mut ps = unsafe { ffi::avformat_alloc_context() };
        if ps.is_null() {
            return Err(MediaError::Ffmpeg("out of memory".into()));
        }
        // SAFETY: `ps` is a fresh context. With a caller-set `pb`, avformat_open_input marks
        // it AVFMT_FLAG_CUSTOM_IO and never frees `pb` (the `Avio` guard does). On failure it
        // frees `ps` and nulls it.
        let r = unsafe {
            (*ps).pb = avio.ctx;
            (*ps).io_open = Some(deny_io_open);
            ffi::avformat_open_input(&mut ps, ptr::null(), fmt, ptr::null_mut())
        };
        if r < 0 {
            if let Some(e) = avio.take_error() {
                return Err(MediaError::Io(e));
            }
            let msg = with_detail(describe(ffmpeg::Error::from(r)));
            // A confident probe (e.g. an mp4 "ftyp") whose header then fails to parse is a
            // damaged or truncated file rather than something that is not media at all.
            return Err(if score >= ffi::AVPROBE_SCORE_MAX / 2 {
                MediaError::Corrupt(format!("cannot read the {name} header: {msg}"))
            } else {
                MediaError::NotMedia(msg)
            });
        }
        // SAFETY: `ps` is an opened input context; `Input` closes it on drop (before `avio`).
        let input = unsafe { ffmpeg::format::context::Input::wrap(ps) };
        Ok(Demuxer {
            input,
            avio,
            confident: score >= ffi::AVPROBE_SCORE_MAX / 2,
        })
    }

    /// Reads packets to fill in the stream parameters, with `max_pixels` passed to the
    /// decoders FFmpeg opens for that.
    pub(crate) fn find_stream_info(&mut self, max_pixels: u64) -> Result<(), MediaError> {
        // SAFETY: the context is open; the dictionaries are ours and freed below.
        let r = unsafe {
            let ps = self.input.as_mut_ptr();
            let n = (*ps).nb_streams as usize;
            let mut dicts: Vec<*mut ffi::AVDictionary> = vec![ptr::null_mut(); n];
            let value = std::ffi::CString::new(max_pixels.min(i32::MAX as u64).to_string())
                .expect("digits have no NUL");
            for d in dicts.iter_mut() {
                ffi::av_dict_set(d, c"max_pixels".as_ptr(), value.as_ptr(), 0);
            }
            let opts = if n == 0 {
                ptr::null_mut()
            } else {
                dicts.as_mut_ptr()
            };
            let r = ffi::avformat_find_stream_info(ps, opts);
            for d in dicts.iter_mut() {
                ffi::av_dict_free(d);
            }
            r
        };
        if r < 0 {
            if let Some(e) = self.avio.take_error() {
                return Err(MediaError::Io(e));
            }
            return Err(MediaError::Corrupt(with_detail(format!(
                "cannot read the stream info: {}",
                describe(ffmpeg::Error::from(r))
            ))));
        }
        Ok(())
    }
}
