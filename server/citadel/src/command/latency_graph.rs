//! LATENCY GRAPH event: Redis's ASCII sparkline of an event's samples,
//! drawn as Redis draws it (`latency.c`, `sparkline.c`): a header with
//! the high, low and all-time high, a rule, then rows of `_o#|` over
//! columns of 80 samples, each labelled with how long ago it happened.

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};

/// Columns per block of the graph, and its height in rows.
const COLUMNS: usize = 80;
const ROWS: usize = 4;
/// Redis's fill charset: each row shows three steps, `|` below them.
const FILL: [u8; 3] = [b'_', b'o', b'#'];
/// Blank rows between the graph and its labels.
const LABEL_MARGIN_TOP: usize = 1;

/// LATENCY GRAPH event (the name matched as LATENCY HISTORY matches it).
pub fn graph(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let wanted = args.get(2);
    let events = ctx.state.introspect.latency.events();
    let Some((name, event)) = events
        .iter()
        .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(wanted))
    else {
        return Err(CmdError::quoting(
            "ERR No samples available for event '",
            wanted,
            "'",
        ));
    };
    let now = ctx.thread.cache.now_ms() / 1000;
    let samples: Vec<(u64, u64)> = event.samples.iter().copied().collect();
    let text = render(name, &samples, event.max_ms, now);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// The graph of `samples` ((unix seconds, ms), oldest first) of `event`
/// whose worst ever was `all_time_max` ms, as seen at `now`.
pub fn render(event: &str, samples: &[(u64, u64)], all_time_max: u64, now: u64) -> String {
    let mut seq = Sequence::default();
    let (mut low, mut high) = (0u64, 0u64);
    for &(time, ms) in samples.iter().filter(|s| s.0 != 0) {
        if seq.samples.is_empty() {
            (low, high) = (ms, ms);
        } else {
            (low, high) = (low.min(ms), high.max(ms));
        }
        let elapsed = now as i64 - time as i64;
        let label = match elapsed {
            ..60 => format!("{elapsed}s"),
            60..3600 => format!("{}m", elapsed / 60),
            3600..86400 => format!("{}h", elapsed / 3600),
            _ => format!("{}d", elapsed / 86400),
        };
        seq.add(ms as f64, label);
    }
    let mut out =
        format!("{event} - high {high} ms, low {low} ms (all time high {all_time_max} ms)\n");
    out.push_str(&"-".repeat(COLUMNS));
    out.push('\n');
    for (i, start) in (0..seq.samples.len()).step_by(COLUMNS).enumerate() {
        if i != 0 {
            out.push('\n');
        }
        let len = COLUMNS.min(seq.samples.len() - start);
        seq.render_range(&mut out, start, len);
    }
    out
}

/// Redis's sparkline sequence: values with labels, and their range.
#[derive(Default)]
struct Sequence {
    samples: Vec<(f64, String)>,
    min: f64,
    max: f64,
}

impl Sequence {
    fn add(&mut self, value: f64, label: String) {
        if self.samples.is_empty() {
            (self.min, self.max) = (value, value);
        } else if value < self.min {
            self.min = value;
        } else if value > self.max {
            // (Redis's `else if`: a first sample both below and above
            // cannot happen, so this is the plain range.)
            self.max = value;
        }
        self.samples.push((value, label));
    }

    /// Rows of samples `start..start + len`: the graph's rows, a blank
    /// row, then the labels one character per row.
    fn render_range(&self, out: &mut String, start: usize, len: usize) {
        let relmax = match self.max - self.min {
            0.0 => 1.0,
            range => range,
        };
        let steps = (FILL.len() * ROWS) as i64;
        let mut row = 0;
        loop {
            let mut any = false;
            let mut chars = vec![b' '; len];
            for (j, (value, label)) in self.samples[start..start + len].iter().enumerate() {
                let relval = value - self.min;
                // C's `(int)(relval*steps)/relmax`, truncated as C does.
                let step = (((relval * steps as f64) as i64) as f64 / relmax) as i64;
                let step = step.clamp(0, steps - 1);
                if row < ROWS {
                    any = true;
                    let charidx = step - ((ROWS - row - 1) * FILL.len()) as i64;
                    if (0..FILL.len() as i64).contains(&charidx) {
                        chars[j] = FILL[charidx as usize];
                    } else if charidx >= FILL.len() as i64 {
                        chars[j] = b'|';
                    }
                } else if row - ROWS < LABEL_MARGIN_TOP {
                    any = true;
                    break;
                } else if let Some(&c) = label.as_bytes().get(row - ROWS - LABEL_MARGIN_TOP) {
                    any = true;
                    chars[j] = c;
                }
            }
            if !any {
                return;
            }
            out.push_str(std::str::from_utf8(&chars).unwrap_or_default());
            out.push('\n');
            row += 1;
        }
    }
}

#[cfg(test)]
mod tests;
