//! Reading a stream page or root's little-endian fields in order; every
//! read past the end is [`Corrupt`], never a panic.

use super::StreamId;
use crate::packed::Corrupt;

pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    /// Bytes not read yet.
    pub(super) fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        let end = self.at.checked_add(n).ok_or(Corrupt)?;
        let out = self.bytes.get(self.at..end).ok_or(Corrupt)?;
        self.at = end;
        Ok(out)
    }

    pub(super) fn u32(&mut self) -> Result<u32, Corrupt> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub(super) fn u64(&mut self) -> Result<u64, Corrupt> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub(super) fn id(&mut self) -> Result<StreamId, Corrupt> {
        Ok(StreamId::from_bytes(
            self.take(16)?.try_into().expect("16 bytes"),
        ))
    }

    /// A `u32` length, then that many bytes.
    pub(super) fn bytes(&mut self) -> Result<&'a [u8], Corrupt> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}
