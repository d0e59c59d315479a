//! SINTER, SUNION and SDIFF over set views; a missing key is an empty set.
//! Results are unique members borrowed from the inputs.

use super::{Lookup, SetView};
use crate::packed::Corrupt;

/// Members of any of `sets`, each once, in first-seen order.
pub fn union<'a>(sets: &[SetView<'a>]) -> Result<Vec<&'a [u8]>, Corrupt> {
    let mut seen = Lookup::new(Vec::new());
    for set in sets {
        for m in set.members() {
            seen.insert(m?);
        }
    }
    Ok(seen.into_members())
}

/// Members of every one of `sets` (none for no sets), at most `limit` of
/// them (0: no limit, as SINTERCARD's LIMIT 0). Walks the smallest set.
pub fn inter<'a>(sets: &[SetView<'a>], limit: usize) -> Result<Vec<&'a [u8]>, Corrupt> {
    let Some(smallest) = (0..sets.len()).min_by_key(|&i| sets[i].len()) else {
        return Ok(Vec::new());
    };
    if sets[smallest].is_empty() {
        return Ok(Vec::new());
    }
    let others = sets
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != smallest)
        .map(|(_, s)| s.lookup())
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for m in sets[smallest].members() {
        let m = m?;
        if others.iter().all(|o| o.contains(m)) {
            out.push(m);
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}

/// Members of the first set that no other set holds.
pub fn diff<'a>(sets: &[SetView<'a>]) -> Result<Vec<&'a [u8]>, Corrupt> {
    let Some((first, rest)) = sets.split_first() else {
        return Ok(Vec::new());
    };
    let rest = Lookup::new(union(rest)?);
    first.members_not_in(&rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packed::Packed;
    use crate::set::Edited;

    fn set(members: &[&str]) -> Vec<u8> {
        let refs: Vec<&[u8]> = members.iter().map(|m| m.as_bytes()).collect();
        Edited::of(refs, 0).value
    }

    fn sorted(v: Vec<&[u8]>) -> Vec<String> {
        let mut v: Vec<String> = v
            .into_iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn union_inter_diff() {
        let a = set(&["a", "b", "c", "1"]);
        let b = set(&["b", "c", "d"]);
        let c = set(&["c", "x"]);
        let views: Vec<SetView<'_>> = [&a, &b, &c]
            .iter()
            .map(|v| SetView::new(Packed::parse(v).unwrap()))
            .collect();
        assert_eq!(
            sorted(union(&views).unwrap()),
            ["1", "a", "b", "c", "d", "x"]
        );
        assert_eq!(sorted(inter(&views, 0).unwrap()), ["c"]);
        assert_eq!(sorted(inter(&views[..2], 0).unwrap()), ["b", "c"]);
        assert_eq!(inter(&views[..2], 1).unwrap().len(), 1);
        assert_eq!(sorted(diff(&views).unwrap()), ["1", "a"]);
        let with_empty = [views[0], SetView::empty()];
        assert!(inter(&with_empty, 0).unwrap().is_empty());
        assert_eq!(diff(&with_empty).unwrap().len(), 4);
        assert!(inter(&[], 0).unwrap().is_empty() && diff(&[]).unwrap().is_empty());
    }
}
