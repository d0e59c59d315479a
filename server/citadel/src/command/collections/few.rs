//! The short lists a collection command builds from its arguments (the
//! elements of a push, the members of an SADD, the pairs of an HSET or
//! ZADD, the keys an update over paged collections declares): the common
//! few live on the stack, more go to a `Vec`. A
//! one-element write then allocates nothing for them (an SADD's `Vec` of
//! one member was a malloc and a free, ~150 instructions of ~3k).

use std::mem::MaybeUninit;
use std::ops::Deref;

/// Items held on the stack before the list moves to the heap.
const FEW: usize = 8;

/// A list of `Copy` items, built by `collect`, read as a slice.
pub struct Few<T> {
    /// The first `len` items (while `heap` is empty). Left uninitialised
    /// past them: filling all eight slots with defaults cost a one-pair
    /// HSET ~30 stores.
    stack: [MaybeUninit<T>; FEW],
    len: usize,
    /// Every item once there are more than [`FEW`] (empty until then: an
    /// empty `Vec` allocates nothing).
    heap: Vec<T>,
}

impl<T: Copy> Few<T> {
    #[inline]
    fn push(&mut self, item: T) {
        if self.len < FEW {
            self.stack[self.len].write(item);
            self.len += 1;
            return;
        }
        if self.heap.is_empty() {
            let Few { stack, heap, .. } = self;
            heap.reserve(2 * FEW);
            // SAFETY: the stack is full (`len == FEW`): `push` wrote every
            // slot.
            heap.extend(stack.iter().map(|slot| unsafe { slot.assume_init() }));
        }
        self.heap.push(item);
    }
}

impl<T: Copy> FromIterator<T> for Few<T> {
    #[inline]
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Few<T> {
        let mut few = Few {
            stack: [const { MaybeUninit::uninit() }; FEW],
            len: 0,
            heap: Vec::new(),
        };
        items.into_iter().for_each(|item| few.push(item));
        few
    }
}

impl<T> Deref for Few<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        if !self.heap.is_empty() {
            return &self.heap;
        }
        // SAFETY: `push` wrote the first `len` (at most `FEW`) slots of
        // `stack` before counting them, and nothing un-writes a slot;
        // `MaybeUninit<T>` has `T`'s layout, so they read as `[T]`.
        unsafe { std::slice::from_raw_parts(self.stack.as_ptr().cast::<T>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_every_item_in_order_on_either_side_of_the_stack_limit() {
        for n in [0, 1, FEW - 1, FEW, FEW + 1, 3 * FEW + 5] {
            let few: Few<usize> = (0..n).collect();
            assert_eq!(&few[..], &(0..n).collect::<Vec<_>>()[..], "n = {n}");
        }
    }

    #[test]
    fn collects_through_a_result() {
        let ok: Result<Few<u8>, ()> = [1, 2, 3].into_iter().map(Ok).collect();
        assert_eq!(&ok.unwrap()[..], &[1, 2, 3]);
        let err: Result<Few<u8>, &str> = [Ok(1), Err("bad"), Ok(3)].into_iter().collect();
        assert_eq!(err.err(), Some("bad"));
    }
}
