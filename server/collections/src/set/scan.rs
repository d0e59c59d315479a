//! SSCAN over a set.
//!
//! An intset answers in one page (cursor 0), as Redis answers for its
//! small encodings. A hashtable is walked in the order of each member's
//! scan position (`linear_hash::scan`, shared with the paged form): the
//! cursor is the next position to visit. Positions do not move when other
//! members come or go, so a member present for the whole scan is returned
//! (at least) once; members sharing a position are returned in the same
//! page.

use super::{SetEncoding, SetView};
use crate::linear_hash::scan::{entries_from, position};
use crate::packed::Corrupt;

/// One SSCAN reply: the next cursor (0: done) and the members to return.
pub struct Page<'a> {
    pub next: u64,
    pub members: Vec<&'a [u8]>,
}

/// The page of `set` from `cursor`: about `count` members visited, of
/// which those `keep` accepts (MATCH) are returned.
pub fn scan<'a>(
    set: &SetView<'a>,
    cursor: u64,
    count: usize,
    keep: impl Fn(&[u8]) -> bool,
) -> Result<Page<'a>, Corrupt> {
    let members = set.to_vec()?;
    if SetEncoding::of(&members) == SetEncoding::IntSet {
        return Ok(Page {
            next: 0,
            members: members.into_iter().filter(|m| keep(m)).collect(),
        });
    }
    let positioned = members.into_iter().map(|m| (position(m), m)).collect();
    let (members, next) = entries_from(positioned, cursor, count);
    Ok(Page {
        next,
        members: members.into_iter().filter(|m| keep(m)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packed::Packed;
    use crate::set::Edited;

    fn value(members: &[String]) -> Vec<u8> {
        Edited::of(members.iter().map(|m| m.as_bytes()).collect(), 0).value
    }

    #[test]
    fn intsets_answer_in_one_page() {
        let v = value(&["3".into(), "1".into(), "2".into()]);
        let set = SetView::new(Packed::parse(&v).unwrap());
        let page = scan(&set, 77, 1, |m| m != b"2").unwrap();
        assert_eq!((page.next, page.members), (0, vec![&b"1"[..], b"3"]));
    }

    #[test]
    fn members_present_throughout_are_all_returned_while_others_change() {
        let stable: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
        let mut current = stable.clone();
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            // Churn: members come and go between pages.
            current.retain(|m| !m.starts_with('x') || round % 2 == 0);
            current.extend((0..20).map(|i| format!("x{round}-{i}")));
            let v = value(&current);
            let set = SetView::new(Packed::parse(&v).unwrap());
            let page = scan(&set, cursor, 7, |_| true).unwrap();
            seen.extend(page.members.iter().map(|m| m.to_vec()));
            cursor = page.next;
            round += 1;
            if cursor == 0 {
                break;
            }
            assert!(round < 10_000, "the scan ends");
        }
        for m in &stable {
            assert!(seen.contains(m.as_bytes()), "{m} missed");
        }
    }
}
