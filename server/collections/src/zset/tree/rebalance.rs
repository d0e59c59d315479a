//! Node sizes: when a node splits (too big) and when it is too small
//! after a removal, and the merge that then joins it with a neighbour
//! (or, when both would not fit one page, evens them out). Without it a
//! set that shrank keeps its pages (a leaf per handful of entries, each
//! read whole by a rank or range walk); with it every node but the top's
//! only child stays at least a quarter full, so pages stay proportional
//! to entries.

use super::codec::key_bytes;
use super::inner::Inner;
use super::leaf::Leaf;
use super::{Child, Miss, Node, Tree, INNER_BYTES, INNER_CHILDREN, LEAF_BYTES, LEAF_ENTRIES};

/// An inner entry's bytes besides its greatest member: page, count, score
/// and the packing's length prefix.
const CHILD_OVERHEAD: usize = 17;

fn leaf_bytes(keys: &[super::Key<'_>]) -> usize {
    keys.iter().map(key_bytes).sum()
}

fn inner_bytes(kids: &[Child<'_>]) -> usize {
    kids.iter()
        .map(|c| key_bytes(&c.max) + CHILD_OVERHEAD)
        .sum()
}

/// An inner node (or the top) past its limits: it splits (the top grows
/// the tree by a level).
pub(super) fn too_big(kids: &[Child<'_>]) -> bool {
    kids.len() > INNER_CHILDREN || kids.len() > 1 && inner_bytes(kids) > INNER_BYTES
}

impl<'a> Node<'a> {
    /// Past a page's limits: split in two.
    pub(super) fn oversized(&self) -> bool {
        match self {
            Node::Leaf(keys) => {
                keys.len() > LEAF_ENTRIES || keys.len() > 1 && leaf_bytes(keys) > LEAF_BYTES
            }
            Node::Inner(node) => too_big(node),
        }
    }

    /// Under a quarter of a page both by count and by bytes (a few big
    /// members are a full enough page): merged with a neighbour.
    fn underfull(&self) -> bool {
        match self {
            Node::Leaf(keys) => keys.len() < LEAF_ENTRIES / 4 && leaf_bytes(keys) < LEAF_BYTES / 4,
            Node::Inner(node) => {
                node.len() < INNER_CHILDREN / 4 && inner_bytes(node) < INNER_BYTES / 4
            }
        }
    }

    /// Appends `other` (the next node at the same level) to this one.
    fn absorb(&mut self, other: Node<'a>) -> Result<(), Miss> {
        match (self, other) {
            (Node::Leaf(keys), Node::Leaf(more)) => keys.keys_mut().extend(more.into_keys()),
            (Node::Inner(node), Node::Inner(more)) => node.kids_mut().extend(more.into_kids()),
            _ => return Err(Miss::Corrupt),
        }
        Ok(())
    }

    /// Splits off the second half (by count).
    pub(super) fn split_half(&mut self) -> Node<'a> {
        match self {
            Node::Leaf(keys) => {
                let keys = keys.keys_mut();
                Node::Leaf(Leaf::new(keys.split_off(keys.len() / 2)))
            }
            Node::Inner(node) => {
                let kids = node.kids_mut();
                Node::Inner(Inner::new(kids.split_off(kids.len() / 2)))
            }
        }
    }
}

impl Tree<'_> {
    /// Whether loaded node `page` is too small (not loaded: no).
    pub(super) fn underfull(&self, page: u64) -> bool {
        self.nodes.get(&page).is_some_and(Node::underfull)
    }

    /// Joins child `at` of inner node `parent` (at `depth`) with its next
    /// neighbour (its previous one when it is the last): one node when
    /// they fit a page, else two even halves. Asks for the neighbour's
    /// page when it is not loaded (the edit runs again with it).
    pub(super) fn rebalance(&mut self, parent: u64, depth: u32, at: usize) -> Result<(), Miss> {
        let leaves = depth + 1 == self.shape.height;
        let kids = self.kids(parent, depth)?;
        if kids.len() < 2 {
            return Ok(());
        }
        let (left_at, right_at) = match at + 1 < kids.len() {
            true => (at, at + 1),
            false => (at - 1, at),
        };
        let (left, right) = (kids[left_at].page, kids[right_at].page);
        self.load(left, leaves)?;
        self.load(right, leaves)?;
        let right_node = self.nodes.remove(&right).ok_or(Miss::Corrupt)?;
        let joined = self.nodes.get_mut(&left).ok_or(Miss::Corrupt)?;
        joined.absorb(right_node)?;
        self.dirty.insert(left);
        let right_entry = match joined.oversized() {
            true => {
                let half = joined.split_half();
                self.nodes.insert(right, half);
                self.dirty.insert(right);
                self.summary_of(right)
            }
            false => {
                self.free(right);
                None
            }
        };
        let left_entry = self.summary_of(left).ok_or(Miss::Corrupt)?;
        let kids = self.kids_mut(parent, depth)?;
        kids[left_at] = left_entry;
        match right_entry {
            Some(entry) => kids[right_at] = entry,
            None => {
                kids.remove(right_at);
            }
        }
        Ok(())
    }
}
