//! Whether a paged root is still the one a command planned from (see
//! `paged.rs`), and the copy of one that is not.

use citadel_cache::owned::OWNER_STAMP_LEN;
use citadel_cache::{ItemRef, ValueKind};
use citadel_collections::list::paged as list_paged;

use super::spare_buf;

/// A copy of `item`'s value (in a spare buffer) if it is a paged root.
pub fn root_value(item: &ItemRef<'_>) -> Option<Vec<u8>> {
    item.is_root().then(|| {
        let mut value = spare_buf();
        item.write_value_to(&mut value);
        value
    })
}

/// Whether `item` is the root `planned` (None: not a paged root). Checked
/// by length and header (and an editable list root's edit state) alone:
/// every new root written moves its version and a new root draws a random
/// generation (`citadel_cache::owned`), and every edit in place moves its
/// descriptor's version, so a root's (generation, version, edit state)
/// names its bytes; comparing the rest (a list root's inline elements)
/// would only read them again.
#[inline(always)] // every collection command asks: a packed one pays a test
pub(super) fn matches_plan(item: &Option<ItemRef<'_>>, planned: Option<&[u8]>) -> bool {
    match planned {
        None => !item.as_ref().is_some_and(ItemRef::is_root),
        Some(planned) => item.as_ref().is_some_and(|item| is_root(item, planned)),
    }
}

/// Whether `item` is the paged root `root` (see [`matches_plan`]).
#[inline(always)]
pub(super) fn is_root(item: &ItemRef<'_>, root: &[u8]) -> bool {
    item.value_len() == root.len()
        && !matches!(item.kind(), ValueKind::String | ValueKind::Page)
        && root
            .get(..OWNER_STAMP_LEN)
            .is_some_and(|h| header_is(item, h))
        && edit_state_is(item, root)
}

/// Whether `item`, a root whose stamp is `planned`'s, has `planned`'s
/// edit state (`EDIT_STATE`: selector and descriptor versions) when it
/// is a list root of the editable layout (an edit in place changes it,
/// never the stamp); true for every other root.
#[inline(never)] // list roots only
fn edit_state_is(item: &ItemRef<'_>, planned: &[u8]) -> bool {
    if item.kind() != ValueKind::List || !list_paged::is_editable_layout(planned) {
        return true;
    }
    const STATE: usize = 40;
    let at = list_paged::EDIT_STATE.start;
    let planned: Option<&[u8; STATE]> = planned.get(at..at + STATE).and_then(|p| p.try_into().ok());
    // (One read of whole words.)
    let read = item
        .contiguous()
        .and_then(|v| v.get(at..at + STATE)?.head::<STATE>());
    read.zip(planned)
        .is_some_and(|(read, planned)| same_words(&read, planned))
}

/// Whether `a` and `b` are equal, compared as five words (an array
/// compare calls memcmp).
fn same_words(a: &[u8; 40], b: &[u8; 40]) -> bool {
    let word = |bytes: &[u8; 40], k: usize| {
        u64::from_ne_bytes(bytes[8 * k..8 * k + 8].try_into().expect("8 bytes"))
    };
    (0..5).fold(0, |differ, k| differ | (word(a, k) ^ word(b, k))) == 0
}

// `edit_state_is` reads an editable list root's edit state in one read.
const _: () = assert!(list_paged::EDIT_STATE.end - list_paged::EDIT_STATE.start == 40);

/// Whether `item`'s value starts with `header` (a root's stamp), read
/// onto the stack.
fn header_is(item: &ItemRef<'_>, header: &[u8]) -> bool {
    item.value_head::<OWNER_STAMP_LEN>()
        .is_some_and(|head| head[..] == *header)
}
