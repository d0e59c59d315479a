//! A provided-buffer ring (IORING_REGISTER_PBUF_RING): a set of equal
//! receive buffers the kernel picks from for multishot recv.
//!
//! The ring of `io_uring_buf` descriptors lives in page-aligned anonymous
//! memory shared with the kernel: we publish buffers by writing descriptors
//! at `tail` and storing the new tail (release); the kernel consumes them
//! from its head. A recv completion names the buffer it filled (its bid);
//! that buffer is ours until [`BufRing::recycle`] hands it back.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

pub struct BufRing {
    /// `entries` descriptors in a page-aligned mmap (the kernel reads them).
    ring: NonNull<BufRingEntry>,
    ring_bytes: usize,
    /// `entries * buf_size` bytes of receive buffers (the kernel writes them).
    data: NonNull<u8>,
    data_bytes: usize,
    entries: u16,
    buf_size: usize,
    tail: u16,
    bgid: u16,
    registered: bool,
}

impl BufRing {
    /// Maps `entries` (a power of two, at most 32768) buffers of `buf_size`
    /// bytes, registers them as buffer group `bgid` of `ring` and provides them all.
    pub fn new(uring: &IoUring, bgid: u16, entries: u16, buf_size: usize) -> io::Result<BufRing> {
        assert!(
            entries.is_power_of_two() && entries <= 32768,
            "bad buffer ring size"
        );
        assert!(buf_size > 0 && buf_size <= u32::MAX as usize);
        let ring_bytes = entries as usize * std::mem::size_of::<BufRingEntry>();
        let data_bytes = entries as usize * buf_size;
        let ring_ptr = map_anonymous(ring_bytes)?;
        let data = match map_anonymous(data_bytes) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: ring_ptr was mapped above with exactly ring_bytes and is unused.
                unsafe { libc::munmap(ring_ptr.as_ptr().cast(), ring_bytes) };
                return Err(e);
            }
        };
        let mut this = BufRing {
            ring: ring_ptr.cast(),
            ring_bytes,
            data,
            data_bytes,
            entries,
            buf_size,
            tail: 0,
            bgid,
            registered: false,
        };
        // SAFETY: the descriptor memory is page aligned (mmap), sized for
        // `entries` descriptors, and stays mapped until `self` is dropped;
        // the owner unregisters it (or destroys the io_uring) before that.
        unsafe {
            uring.submitter().register_buf_ring_with_flags(
                this.ring.as_ptr() as u64,
                entries,
                bgid,
                0,
            )?
        };
        this.registered = true;
        for bid in 0..entries {
            this.recycle(bid);
        }
        Ok(this)
    }

    pub fn bgid(&self) -> u16 {
        self.bgid
    }

    /// The first `len` bytes of buffer `bid`, which a completion just handed us.
    ///
    /// # Safety
    /// `bid` must come from a recv completion of this buffer group that has
    /// not been recycled yet (until then the kernel does not write to it),
    /// and `len` must be that completion's byte count.
    pub unsafe fn filled(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.entries && len <= self.buf_size);
        // SAFETY: in bounds per the assert; per the contract the kernel has
        // finished writing these bytes and will not touch them until recycled.
        unsafe {
            std::slice::from_raw_parts(self.data.as_ptr().add(bid as usize * self.buf_size), len)
        }
    }

    /// Gives buffer `bid` back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        assert!(bid < self.entries);
        let slot = (self.tail & (self.entries - 1)) as usize;
        // SAFETY: `slot` < entries so the descriptor is inside the mapping;
        // descriptors at or past the published tail are ours to write (the
        // kernel reads only up to the tail we publish below).
        unsafe {
            let entry = &mut *self.ring.as_ptr().add(slot);
            entry.set_addr(self.data.as_ptr().add(bid as usize * self.buf_size) as u64);
            entry.set_len(self.buf_size as u32);
            entry.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field of the first descriptor is a u16 the kernel
        // reads with acquire semantics; it is suitably aligned for AtomicU16.
        let tail = unsafe { &*(BufRingEntry::tail(self.ring.as_ptr()) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }

    /// Unregisters the group so the kernel no longer reads the descriptors.
    pub fn unregister(&mut self, uring: &IoUring) {
        if self.registered {
            let _ = uring.submitter().unregister_buf_ring(self.bgid);
            self.registered = false;
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: both regions were mapped in `new` with these sizes. The owner
        // unregistered the group or closed its io_uring with no recv in flight,
        // so the kernel no longer reads or writes them.
        unsafe {
            libc::munmap(self.ring.as_ptr().cast(), self.ring_bytes);
            libc::munmap(self.data.as_ptr().cast(), self.data_bytes);
        }
    }
}

fn map_anonymous(len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: an anonymous private mapping with no address hint touches no existing memory.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}
