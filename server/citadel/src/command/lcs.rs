//! LCS: the longest common subsequence of two strings (Redis 7.0). It
//! fills the same dynamic-programming table Redis does and walks it back
//! the same way, so among several common subsequences of the longest
//! length it answers the one Redis answers, with the same IDX ranges.

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::value::get_string;

/// What LCS was asked for.
#[derive(Default)]
struct Options {
    len: bool,
    idx: bool,
    with_match_len: bool,
    min_match_len: u64,
}

/// LCS's own errors, with Redis's texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LcsError {
    NotStrings,
    LenAndIdx,
    TableTooLarge,
}

impl From<LcsError> for CmdError {
    fn from(e: LcsError) -> CmdError {
        CmdError::Static(match e {
            LcsError::NotStrings => "ERR The specified keys must contain string values",
            LcsError::LenAndIdx => {
                "ERR If you want both the length and indexes, please just use IDX."
            }
            LcsError::TableTooLarge => {
                "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
            }
        })
    }
}

/// One run of matching bytes: its ranges in the first and second string
/// (inclusive, as Redis replies them).
struct Match {
    a: (usize, usize),
    b: (usize, usize),
}

pub fn lcs(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // Redis checks both keys' types before it reads the options.
    let a = string_or_empty(ctx, args.get(1))?;
    let b = string_or_empty(ctx, args.get(2))?;
    let opts = parse_options(&args)?;
    // The table has (|a|+1) x (|b|+1) cells of 4 bytes; Redis refuses one
    // larger than proto-max-bulk-len (here the largest value).
    let cells = (a.len() as u64 + 1).saturating_mul(b.len() as u64 + 1);
    if a.len() as u64 >= u64::from(u32::MAX - 1)
        || b.len() as u64 >= u64::from(u32::MAX - 1)
        || cells.saturating_mul(4) > ctx.state.cache.max_value_size()
    {
        return Err(LcsError::TableTooLarge.into());
    }
    let table = Table::fill(&a, &b);
    let out = &mut ctx.out;
    if opts.len {
        out.int(i64::from(table.longest()));
        return Ok(());
    }
    let (common, matches) = table.walk_back(&a, &b, opts.min_match_len);
    if !opts.idx {
        out.bulk(&common);
        return Ok(());
    }
    out.map(2);
    out.bulk(b"matches");
    out.array(matches.len());
    for m in &matches {
        out.array(if opts.with_match_len { 3 } else { 2 });
        for (start, end) in [m.a, m.b] {
            out.array(2);
            out.int(start as i64);
            out.int(end as i64);
        }
        if opts.with_match_len {
            out.int((m.a.1 - m.a.0 + 1) as i64);
        }
    }
    out.bulk(b"len");
    out.int(i64::from(table.longest()));
    Ok(())
}

/// The string at `key`, empty when missing.
fn string_or_empty(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Vec<u8>, CmdError> {
    let read = get_string(&mut ctx.thread.cache, key, |item| {
        let mut value = Vec::new();
        item.write_value_to(&mut value);
        value
    });
    match read {
        Ok(found) => Ok(found.unwrap_or_default()),
        Err(CmdError::WrongType) => Err(LcsError::NotStrings.into()),
        Err(e) => Err(e),
    }
}

fn parse_options(args: &Args<'_>) -> Result<Options, CmdError> {
    let mut opts = Options::default();
    let mut i = 3;
    while i < args.len() {
        if args.is(i, "idx") {
            opts.idx = true;
        } else if args.is(i, "len") {
            opts.len = true;
        } else if args.is(i, "withmatchlen") {
            opts.with_match_len = true;
        } else if args.is(i, "minmatchlen") && i + 1 < args.len() {
            opts.min_match_len = args.int(i + 1)?.max(0) as u64;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if opts.idx && opts.len {
        return Err(LcsError::LenAndIdx.into());
    }
    Ok(opts)
}

/// `cell(i, j)`: the length of the LCS of `a[..i]` and `b[..j]`.
struct Table {
    cells: Vec<u32>,
    width: usize,
}

impl Table {
    fn fill(a: &[u8], b: &[u8]) -> Table {
        let width = b.len() + 1;
        let mut cells = vec![0u32; (a.len() + 1) * width];
        for i in 1..=a.len() {
            let (above, row) = cells[(i - 1) * width..(i + 1) * width].split_at_mut(width);
            for j in 1..width {
                row[j] = if a[i - 1] == b[j - 1] {
                    above[j - 1] + 1
                } else {
                    above[j].max(row[j - 1])
                };
            }
        }
        Table { cells, width }
    }

    fn cell(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.width + j]
    }

    fn longest(&self) -> u32 {
        self.cells[self.cells.len() - 1]
    }

    /// From the table's last cell back to an edge, as Redis walks it: on
    /// equal bytes take them and step diagonally, else step toward the
    /// larger neighbour (up only when strictly larger). Returns the common
    /// subsequence and its runs of contiguous matches from the end, those
    /// shorter than `min_len` left out.
    fn walk_back(&self, a: &[u8], b: &[u8], min_len: u64) -> (Vec<u8>, Vec<Match>) {
        let mut common = vec![0u8; self.longest() as usize];
        let mut matches = Vec::new();
        let (mut i, mut j, mut k) = (a.len(), b.len(), common.len());
        let mut run: Option<Match> = None;
        while i > 0 && j > 0 {
            let mut close = false;
            if a[i - 1] == b[j - 1] {
                common[k - 1] = a[i - 1];
                match &mut run {
                    None => {
                        run = Some(Match {
                            a: (i - 1, i - 1),
                            b: (j - 1, j - 1),
                        })
                    }
                    // Walking back one diagonal step extends the run.
                    Some(m) if m.a.0 == i && m.b.0 == j => {
                        m.a.0 -= 1;
                        m.b.0 -= 1;
                    }
                    Some(_) => close = true,
                }
                if run.as_ref().is_some_and(|m| m.a.0 == 0 || m.b.0 == 0) {
                    close = true;
                }
                (i, j, k) = (i - 1, j - 1, k - 1);
            } else {
                if self.cell(i - 1, j) > self.cell(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                close = run.is_some();
            }
            if close {
                if let Some(m) = run.take() {
                    if (m.a.1 - m.a.0 + 1) as u64 >= min_len {
                        matches.push(m);
                    }
                }
            }
        }
        (common, matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A match's ranges in the first and the second string.
    type Ranges = ((usize, usize), (usize, usize));

    fn run(a: &str, b: &str, min: u64) -> (String, Vec<Ranges>) {
        let t = Table::fill(a.as_bytes(), b.as_bytes());
        let (common, matches) = t.walk_back(a.as_bytes(), b.as_bytes(), min);
        let ranges = matches.iter().map(|m| (m.a, m.b)).collect();
        (String::from_utf8(common).unwrap(), ranges)
    }

    #[test]
    fn redis_documented_example() {
        // From Redis's LCS documentation.
        let (common, ranges) = run("ohmytext", "mynewtext", 0);
        assert_eq!(common, "mytext");
        assert_eq!(ranges, vec![((4, 7), (5, 8)), ((2, 3), (0, 1))]);
        let (_, ranges) = run("ohmytext", "mynewtext", 4);
        assert_eq!(ranges, vec![((4, 7), (5, 8))]);
    }

    #[test]
    fn empty_and_disjoint_strings_have_no_common_part() {
        assert_eq!(run("", "abc", 0), (String::new(), vec![]));
        assert_eq!(run("abc", "xyz", 0), (String::new(), vec![]));
        assert_eq!(Table::fill(b"", b"").longest(), 0);
    }
}
