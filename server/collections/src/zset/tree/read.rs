//! Reads of the tree: a member's rank, how many entries come before a
//! bound (the ranks of a score or lex range), the entries at a rank
//! range. Each walks one path (a range: the paths to its leaves) and asks
//! for the pages it has not loaded.

use super::{key_cmp, Key, Miss, Tree, TOP};

impl<'a> Tree<'a> {
    /// The rank of `key`, if present.
    pub fn rank(&mut self, key: &Key<'_>) -> Result<Option<u64>, Miss> {
        if self.shape.top.is_empty() {
            return Ok(None);
        }
        let (path, leaf) = self.path_to(key)?;
        let mut before = 0;
        for (depth, &(node, at)) in path.iter().enumerate() {
            before += self.kids(node, depth as u32)?[..at]
                .iter()
                .map(|c| c.count)
                .sum::<u64>();
        }
        let keys = self.leaf(leaf)?;
        Ok(keys
            .binary_search_by(|k| key_cmp(k, key))
            .ok()
            .map(|at| before + at as u64))
    }

    /// How many entries satisfy `before` (true for a prefix of the order).
    pub fn count_before(&mut self, before: impl Fn(&Key<'a>) -> bool) -> Result<u64, Miss> {
        let mut id = TOP;
        let mut total = 0;
        for depth in 0..self.shape.height {
            let kids = self.kids(id, depth)?;
            // (Children are in the order of their greatest entries.)
            let at = kids.partition_point(|c| before(&c.max));
            if at == kids.len() {
                return Ok(total + kids.iter().map(|c| c.count).sum::<u64>());
            }
            total += kids[..at].iter().map(|c| c.count).sum::<u64>();
            id = kids[at].page;
        }
        let keys = self.leaf(id)?;
        Ok(total + keys.partition_point(|k| before(k)) as u64)
    }

    /// The entries at ranks `start..end`, in order.
    pub fn range(&mut self, start: u64, end: u64) -> Result<Vec<Key<'a>>, Miss> {
        let mut out = Vec::new();
        let mut need = Vec::new();
        if start < end {
            self.collect(TOP, 0, 0, start..end, &mut out, &mut need)?;
        }
        match need.is_empty() {
            true => Ok(out),
            false => Err(Miss::Need(need)),
        }
    }

    fn collect(
        &mut self,
        id: u64,
        depth: u32,
        first: u64,
        want: std::ops::Range<u64>,
        out: &mut Vec<Key<'a>>,
        need: &mut Vec<u64>,
    ) -> Result<(), Miss> {
        if depth == self.shape.height {
            match self.leaf(id) {
                Ok(keys) => {
                    let from = want.start.saturating_sub(first) as usize;
                    let to = ((want.end - first) as usize).min(keys.len());
                    out.extend(keys[from.min(to)..to].iter().cloned());
                }
                Err(Miss::Need(pages)) => need.extend(pages),
                Err(e) => return Err(e),
            }
            return Ok(());
        }
        // (Each child's page and count: its greatest entry is not needed.)
        let kids: Vec<(u64, u64)> = match self.kids(id, depth) {
            Ok(kids) => kids.iter().map(|kid| (kid.page, kid.count)).collect(),
            Err(Miss::Need(pages)) => {
                need.extend(pages);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut at = first;
        for (page, count) in kids {
            if at + count > want.start && at < want.end {
                self.collect(page, depth + 1, at, want.clone(), out, need)?;
            }
            at += count;
        }
        Ok(())
    }
}
