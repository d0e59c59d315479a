//! Whole reply frames as the transports hand them over, and reading them
//! from a byte stream.

use std::io::{self, Read};

use citadel_proto::rpc::{
    peek_body_len, peek_id, FrameHeader, Method, DEFAULT_MAX_FRAME, HEADER_LEN,
};

use crate::error::{Error, ProtocolError, Result};

/// One received frame: its header and its body (owned, read straight
/// from the transport into its own buffer).
#[derive(Debug)]
pub(crate) struct Frame {
    pub header: FrameHeader,
    pub body: Vec<u8>,
}

/// Reads a frame header's 24 bytes: the magic, version and length are
/// checked here, before any of the body is read.
pub(crate) fn parse_header(head: &[u8; HEADER_LEN]) -> Result<FrameHeader> {
    // `parse_with` checks magic, version and size but wants the whole
    // frame for the rest; a header alone is complete only without a body.
    if let Some((header, _)) = FrameHeader::parse_with(head, DEFAULT_MAX_FRAME).map_err(bad)? {
        return Ok(header);
    }
    let method = Method::from_code(head[3]).ok_or(ProtocolError::UnknownMethod(head[3]))?;
    Ok(FrameHeader {
        flags: head[2],
        method,
        body_len: peek_body_len(head),
        id: peek_id(head),
    })
}

fn bad(e: citadel_proto::rpc::FrameError) -> Error {
    Error::Protocol(ProtocolError::Frame(e))
}

/// Reads the next whole frame from a blocking byte stream; `Ok(None)` at
/// a clean end of stream (between frames).
pub(crate) fn read_frame(r: &mut impl Read) -> Result<Option<Frame>> {
    let mut head = [0u8; HEADER_LEN];
    if !read_exact_or_eof(r, &mut head)? {
        return Ok(None);
    }
    let header = parse_header(&head)?;
    let mut body = vec![0u8; header.body_len as usize];
    r.read_exact(&mut body)?;
    Ok(Some(Frame { header, body }))
}

/// `read_exact`, but an end of stream before the first byte is `false`.
fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
