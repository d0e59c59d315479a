//! Recognition (and angle classification) batches, and CTC greedy decoding.

use crate::image::{Bgr, Crop};

/// Recognition input height and minimum width (PP-OCRv4 `3x48x320`).
pub(crate) const REC_H: usize = 48;
pub(crate) const REC_W: usize = 320;
/// Angle classifier input (`3x48x192`).
pub(crate) const CLS_H: usize = 48;
pub(crate) const CLS_W: usize = 192;
/// The classifier must be this sure before a line is turned by 180 degrees.
pub(crate) const CLS_THRESH: f32 = 0.9;

/// The CTC label set: index 0 is the blank, then the dictionary, then a
/// space (PP-OCR appends one).
pub(crate) struct Charset(Vec<String>);

impl Charset {
    /// From the dictionary text, one symbol per line.
    pub fn from_dict(text: &str) -> Self {
        let mut v = vec![String::new()];
        v.extend(
            text.split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string()),
        );
        if v.last().is_some_and(|l| l.is_empty()) && v.len() > 1 {
            // A trailing newline does not make an empty symbol.
            v.pop();
        }
        v.push(" ".to_string());
        Self(v)
    }

    /// Number of classes including blank and space.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Greedy CTC decode of one `[T, C]` probability matrix: the best class
    /// per step, repeats merged, blanks dropped; score is the mean of the
    /// kept steps' probabilities (0 when nothing is kept).
    pub fn decode(&self, probs: &[f32], classes: usize) -> (String, f32) {
        let mut text = String::new();
        let (mut sum, mut n) = (0.0f32, 0usize);
        let mut prev = usize::MAX;
        for step in probs.chunks_exact(classes) {
            let (best, p) = step
                .iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f32::MIN),
                    |acc, (i, v)| if v > acc.1 { (i, v) } else { acc },
                );
            if best != 0 && best != prev {
                if let Some(s) = self.0.get(best) {
                    text.push_str(s);
                }
                sum += p;
                n += 1;
            }
            prev = best;
        }
        (text, if n == 0 { 0.0 } else { sum / n as f32 })
    }
}

/// A normalised `[n, 3, h, w]` batch.
pub(crate) struct Batch {
    pub n: usize,
    pub w: usize,
    pub h: usize,
    pub data: Vec<f32>,
}

/// Builds one recognition batch as PP-OCR: every crop is scaled to height
/// 48 keeping its aspect (width `ceil(48 * w / h)`), left-aligned, and
/// zero-padded to the widest (at least 320).
pub(crate) fn rec_batch(crops: &[(&Bgr, Crop)]) -> Batch {
    let max_ratio = crops
        .iter()
        .map(|(_, c)| c.aspect())
        .fold(REC_W as f32 / REC_H as f32, f32::max);
    let w = (REC_H as f32 * max_ratio) as usize;
    fill(crops, REC_H, w)
}

/// The classifier batch: height 48, width `ceil(48 * w / h)` up to 192.
pub(crate) fn cls_batch(crops: &[(&Bgr, Crop)]) -> Batch {
    fill(crops, CLS_H, CLS_W)
}

fn fill(crops: &[(&Bgr, Crop)], h: usize, w: usize) -> Batch {
    let per = 3 * h * w;
    let mut data = vec![0.0f32; per * crops.len()];
    for ((src, crop), dst) in crops.iter().zip(data.chunks_exact_mut(per)) {
        let rw = ((h as f32 * crop.aspect()).ceil() as usize).clamp(1, w);
        crop.sample_into(src, rw, h, dst, w);
    }
    Batch {
        n: crops.len(),
        w,
        h,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctc_merges_repeats_and_drops_blanks() {
        let cs = Charset::from_dict("a\nb\n");
        assert_eq!(cs.len(), 4); // blank a b space
                                 // steps: a a blank a b space
        let oh = |i: usize, p: f32| {
            let mut v = vec![0.0; 4];
            v[i] = p;
            v
        };
        let probs: Vec<f32> = [
            oh(1, 0.8),
            oh(1, 0.9),
            oh(0, 1.0),
            oh(1, 0.6),
            oh(2, 1.0),
            oh(3, 0.9),
        ]
        .concat();
        let (t, s) = cs.decode(&probs, 4);
        assert_eq!(t, "aab ");
        assert!((s - (0.8 + 0.6 + 1.0 + 0.9) / 4.0).abs() < 1e-6);
        assert_eq!(cs.decode(&oh(0, 1.0), 4), (String::new(), 0.0));
    }
}
