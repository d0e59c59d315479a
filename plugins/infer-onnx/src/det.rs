//! Text detection (DB, "differentiable binarisation") pre- and
//! post-processing, without OpenCV.
//!
//! The model returns a text probability map at the input resolution. Here it
//! is binarised (`det_threshold`), dilated by a 2x2 kernel, split into
//! 8-connected components, and each component becomes the minimum-area
//! rotated rectangle around its pixels (convex hull + rotating calipers).
//! A box is kept when the mean probability inside it reaches
//! `box_threshold` and it is not too thin; it is then grown on every side by
//! `area * unclip_ratio / perimeter` (what PP-OCR's polygon offset with round
//! joins gives for a rectangle once its minimum-area rectangle is taken),
//! scaled back to the source image and clamped.

use crate::config::{LimitType, OcrConfig};
use crate::geom::{convex_hull, cross, min_area_rect, order_clockwise, Rect};

/// A detected text box `[tl, tr, br, bl]` in source pixels, and its mean
/// probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DetBox {
    pub pts: [[f32; 2]; 4],
    pub score: f32,
}

/// At most this many components are looked at (PP-OCR's `max_candidates`).
const MAX_CANDIDATES: usize = 1000;
/// Boxes with a shorter side below this (in map pixels) are dropped.
const MIN_SIZE: f32 = 3.0;

/// The detector input size for a `w x h` image: multiples of 32.
pub(crate) fn input_size(w: u32, h: u32, cfg: &OcrConfig) -> (usize, usize) {
    let (mut w, mut h) = (f64::from(w), f64::from(h));
    let long = w.max(h);
    if cfg.max_image_side > 0 && long > f64::from(cfg.max_image_side) {
        let r = f64::from(cfg.max_image_side) / long;
        w = (w * r).floor();
        h = (h * r).floor();
    }
    let limit = f64::from(cfg.max_side.max(32));
    let ratio = match cfg.limit_type {
        LimitType::Min if w.min(h) < limit => limit / w.min(h),
        LimitType::Max if w.max(h) > limit => limit / w.max(h),
        _ => 1.0,
    };
    let round32 =
        |v: f64| (((v * ratio).floor() / 32.0).round_ties_even() * 32.0).max(32.0) as usize;
    (round32(w), round32(h))
}

/// Boxes from a `mw x mh` probability map, in `src_w x src_h` coordinates,
/// unsorted.
pub(crate) fn boxes_from_map(
    pred: &[f32],
    mw: usize,
    mh: usize,
    src_w: usize,
    src_h: usize,
    cfg: &OcrConfig,
) -> Vec<DetBox> {
    let mask = binarize(pred, mw, mh, cfg.det_threshold);
    let mut out = Vec::new();
    for comp in components(&mask, mw, mh).into_iter().take(MAX_CANDIDATES) {
        let hull = convex_hull(comp);
        let Some(rect) = min_area_rect(&hull) else {
            continue;
        };
        if rect.short_side() < MIN_SIZE {
            continue;
        }
        let score = box_score(pred, mw, mh, &rect.corners());
        if score < cfg.box_threshold {
            continue;
        }
        let (a, b) = (2.0 * rect.half[0], 2.0 * rect.half[1]);
        let d = a * b * cfg.unclip_ratio / (2.0 * (a + b));
        let grown = Rect {
            half: [rect.half[0] + d, rect.half[1] + d],
            ..rect
        };
        if grown.short_side() < MIN_SIZE + 2.0 {
            continue;
        }
        let (sx, sy) = (src_w as f32 / mw as f32, src_h as f32 / mh as f32);
        let pts = grown.corners().map(|p| {
            [
                (p[0] * sx).round().clamp(0.0, src_w as f32),
                (p[1] * sy).round().clamp(0.0, src_h as f32),
            ]
        });
        let mut pts = order_clockwise(pts);
        for p in &mut pts {
            p[0] = p[0].clamp(0.0, (src_w - 1) as f32).trunc();
            p[1] = p[1].clamp(0.0, (src_h - 1) as f32).trunc();
        }
        let len = |p: [f32; 2], q: [f32; 2]| {
            ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2))
                .sqrt()
                .trunc()
        };
        if len(pts[0], pts[1]) <= 3.0 || len(pts[0], pts[3]) <= 3.0 {
            continue;
        }
        out.push(DetBox { pts, score });
    }
    out
}

/// PP-OCR's reading order: by top-left corner (y, then x), then boxes
/// whose top-left y differ by less than 10 pixels ordered left to right.
pub(crate) fn sort_boxes(boxes: &mut [DetBox]) {
    boxes.sort_by(|a, b| {
        (a.pts[0][1], a.pts[0][0])
            .partial_cmp(&(b.pts[0][1], b.pts[0][0]))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for i in 0..boxes.len().saturating_sub(1) {
        for j in (0..=i).rev() {
            let (a, b) = (boxes[j].pts[0], boxes[j + 1].pts[0]);
            if (b[1] - a[1]).abs() < 10.0 && b[0] < a[0] {
                boxes.swap(j, j + 1);
            } else {
                break;
            }
        }
    }
}

/// `pred > thresh`, then a 2x2 dilation (a set pixel also sets its right,
/// lower and lower-right neighbours, as OpenCV's 2x2 kernel with its
/// anchor at (1, 1)).
fn binarize(pred: &[f32], w: usize, h: usize, thresh: f32) -> Vec<bool> {
    let m: Vec<bool> = pred.iter().map(|&p| p > thresh).collect();
    let mut d = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            let at = |xx: usize, yy: usize| m[yy * w + xx];
            d[y * w + x] = at(x, y)
                || (x > 0 && at(x - 1, y))
                || (y > 0 && at(x, y - 1))
                || (x > 0 && y > 0 && at(x - 1, y - 1));
        }
    }
    d
}

/// The 8-connected components of `mask`, each as the leftmost and
/// rightmost pixel of each of its rows (all the convex hull needs), in
/// raster order of their first pixel.
fn components(mask: &[bool], w: usize, h: usize) -> Vec<Vec<[f32; 2]>> {
    let mut seen = vec![false; w * h];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        // row -> (min x, max x)
        let mut rows: Vec<(usize, usize, usize)> = Vec::new();
        let mut pixels = Vec::new();
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            pixels.push((x, y));
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if mask[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        pixels.sort_unstable_by_key(|&(x, y)| (y, x));
        for (x, y) in pixels {
            match rows.last_mut() {
                Some(r) if r.0 == y => r.2 = x,
                _ => rows.push((y, x, x)),
            }
        }
        let mut pts = Vec::with_capacity(rows.len() * 2);
        for (y, x0, x1) in rows {
            pts.push([x0 as f32, y as f32]);
            if x1 != x0 {
                pts.push([x1 as f32, y as f32]);
            }
        }
        out.push(pts);
    }
    out
}

/// Mean of `pred` over the pixels inside the quadrilateral (vertices
/// truncated to integers, boundary included), as PP-OCR's "fast" score.
fn box_score(pred: &[f32], w: usize, h: usize, quad: &[[f32; 2]; 4]) -> f32 {
    let q = quad.map(|p| [p[0].trunc(), p[1].trunc()]);
    let clampi = |v: f32, hi: usize| (v.max(0.0) as usize).min(hi - 1);
    let xmin = clampi(
        quad.iter().map(|p| p[0]).fold(f32::MAX, f32::min).floor(),
        w,
    );
    let xmax = clampi(quad.iter().map(|p| p[0]).fold(f32::MIN, f32::max).ceil(), w);
    let ymin = clampi(
        quad.iter().map(|p| p[1]).fold(f32::MAX, f32::min).floor(),
        h,
    );
    let ymax = clampi(quad.iter().map(|p| p[1]).fold(f32::MIN, f32::max).ceil(), h);
    // Orientation of the quad, so that "inside" is the same side of every edge.
    let area2: f32 = (0..4)
        .map(|i| cross([0.0, 0.0], q[i], q[(i + 1) % 4]))
        .sum();
    let sign = if area2 < 0.0 { -1.0 } else { 1.0 };
    let (mut sum, mut n) = (0.0f64, 0usize);
    for y in ymin..=ymax {
        for x in xmin..=xmax {
            let p = [x as f32, y as f32];
            if (0..4).all(|i| sign * cross(q[i], q[(i + 1) % 4], p) >= -1e-3) {
                sum += f64::from(pred[y * w + x]);
                n += 1;
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        (sum / n as f64) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_sizes_like_rapidocr() {
        let cfg = OcrConfig::default();
        assert_eq!(input_size(640, 360, &cfg), (1312, 736));
        assert_eq!(input_size(1000, 800, &cfg), (1000 / 32 * 32, 800));
        let max = OcrConfig {
            limit_type: LimitType::Max,
            max_side: 960,
            ..OcrConfig::default()
        };
        assert_eq!(input_size(1920, 1080, &max), (960, 544));
    }

    #[test]
    fn one_block_becomes_one_grown_box() {
        let (w, h) = (100, 40);
        let mut pred = vec![0.0f32; w * h];
        for y in 10..20 {
            for x in 20..70 {
                pred[y * w + x] = 0.9;
            }
        }
        let boxes = boxes_from_map(&pred, w, h, w * 2, h * 2, &OcrConfig::default());
        assert_eq!(boxes.len(), 1);
        let b = boxes[0];
        // The dilated rim (probability 0) is inside the box too.
        assert!(b.score > 0.7 && b.score < 0.9, "{b:?}");
        // 50x10 block (+1 from dilation), grown by ~6.7 px each side, x2 scale.
        assert!(
            b.pts[0][0] < 40.0 && b.pts[1][0] > 140.0 && b.pts[0][1] < 20.0 && b.pts[3][1] > 40.0,
            "{b:?}"
        );
    }

    #[test]
    fn reading_order() {
        let mk = |x: f32, y: f32| DetBox {
            pts: [[x, y], [x + 10.0, y], [x + 10.0, y + 5.0], [x, y + 5.0]],
            score: 1.0,
        };
        let mut v = vec![mk(50.0, 3.0), mk(0.0, 100.0), mk(0.0, 8.0)];
        sort_boxes(&mut v);
        assert_eq!(
            v.iter().map(|b| b.pts[0]).collect::<Vec<_>>(),
            vec![[0.0, 8.0], [50.0, 3.0], [0.0, 100.0]]
        );
    }
}
