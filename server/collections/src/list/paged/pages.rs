//! The pages a list edit loaded, sorted by number.

use std::collections::VecDeque;

/// The loaded pages, sorted by number (None: deleted by the edit): a
/// push or pop holds one or none, so a sorted deque beats a map (no node
/// allocation per command); LRANGE's many are found by binary search, and
/// the pages a big push opens or a big pop drops come and go at the ends
/// (a deque's O(1); deleted ones stay as None, nothing shifts).
#[derive(Debug, Default)]
pub(super) struct Pages(pub(super) VecDeque<(u64, Option<Vec<u8>>)>);

impl Pages {
    pub(super) fn new(pages: impl IntoIterator<Item = (u64, Vec<u8>)>) -> Pages {
        // A push or pop between spills loads none: no collect then.
        let mut pages = pages.into_iter();
        let Some(first) = pages.next() else {
            return Pages::default();
        };
        let mut pages: VecDeque<_> = (std::iter::once(first).chain(pages))
            .map(|(page, bytes)| (page, Some(bytes)))
            .collect();
        if !pages
            .iter()
            .zip(pages.iter().skip(1))
            .all(|(a, b)| a.0 < b.0)
        {
            let pages = pages.make_contiguous();
            pages.sort_unstable_by_key(|p| p.0);
        }
        let mut at = 1;
        while at < pages.len() {
            if pages[at].0 == pages[at - 1].0 {
                pages.remove(at);
            } else {
                at += 1;
            }
        }
        Pages(pages)
    }

    pub(super) fn find(&self, page: u64) -> Result<usize, usize> {
        self.0.binary_search_by_key(&page, |p| p.0)
    }

    pub(super) fn get(&self, page: u64) -> Option<&Vec<u8>> {
        self.0[self.find(page).ok()?].1.as_ref()
    }

    pub(super) fn insert(&mut self, page: u64, bytes: Vec<u8>) {
        match self.find(page) {
            Ok(at) => self.0[at].1 = Some(bytes),
            Err(at) => self.0.insert(at, (page, Some(bytes))),
        }
    }

    pub(super) fn remove(&mut self, page: u64) -> Option<Vec<u8>> {
        let at = self.find(page).ok()?;
        self.0[at].1.take()
    }
}
