//! The loom build's stand-in for the mapped file: loom atomics for just the
//! ranges a model declares, at the offsets the production layout computes.

use crate::sync::{AtomicU32, AtomicU64};

pub struct Region {
    u64s: Vec<(usize, Box<[AtomicU64]>)>,
    u32s: Vec<(usize, Box<[AtomicU32]>)>,
    len: usize,
}

impl Region {
    /// Zeroed words for each range of `u64s` (8-aligned) and `u32s` (4-aligned)
    /// in a file of `len` bytes; any other offset panics when touched.
    pub fn model(
        len: usize,
        u64s: &[std::ops::Range<usize>],
        u32s: &[std::ops::Range<usize>],
    ) -> Region {
        Region {
            u64s: u64s
                .iter()
                .map(|r| {
                    (
                        r.start,
                        (r.start..r.end)
                            .step_by(8)
                            .map(|_| AtomicU64::new(0))
                            .collect(),
                    )
                })
                .collect(),
            u32s: u32s
                .iter()
                .map(|r| {
                    (
                        r.start,
                        (r.start..r.end)
                            .step_by(4)
                            .map(|_| AtomicU32::new(0))
                            .collect(),
                    )
                })
                .collect(),
            len: len & !7,
        }
    }

    pub fn map(_file: &std::fs::File, _len: usize) -> std::io::Result<Region> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    pub fn map_read_only(_file: &std::fs::File, _len: usize) -> std::io::Result<Region> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn find<T>(ranges: &[(usize, Box<[T]>)], off: usize, size: usize, n: usize) -> &[T] {
        assert!(off.is_multiple_of(size), "misaligned offset {off}");
        ranges
            .iter()
            .find_map(|(start, words)| {
                let i = off.checked_sub(*start)? / size;
                words.get(i..i + n)
            })
            .unwrap_or_else(|| panic!("offset {off} is outside the model's memory"))
    }

    pub fn u64_at(&self, off: usize) -> &AtomicU64 {
        &Self::find(&self.u64s, off, 8, 1)[0]
    }

    pub fn words(&self, off: usize, n: usize) -> &[AtomicU64] {
        Self::find(&self.u64s, off, 8, n)
    }

    pub fn bucket_at(&self, off: usize) -> &[AtomicU64; 8] {
        Self::find(&self.u64s, off, 8, 8)
            .try_into()
            .expect("8 words")
    }

    pub fn u32_at(&self, off: usize) -> &AtomicU32 {
        &Self::find(&self.u32s, off, 4, 1)[0]
    }

    pub fn prefetch(&self, _off: usize) {}
    pub fn prefetch_item(&self, _off: usize) {}
    pub fn prefetch_write(&self, _off: usize) {}
}
