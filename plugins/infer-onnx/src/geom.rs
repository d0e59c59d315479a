//! Plane geometry for the detector boxes: convex hull, minimum-area
//! rotated rectangle, and PP-OCR's corner orders.

pub(crate) fn cross(o: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// Andrew's monotone chain; counter-clockwise in image coordinates' maths
/// sense, no collinear points.
pub(crate) fn convex_hull(mut pts: Vec<[f32; 2]>) -> Vec<[f32; 2]> {
    pts.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let mut hull: Vec<[f32; 2]> = Vec::with_capacity(pts.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &[f32; 2]>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &p in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

/// A rotated rectangle: centre, unit axes `u` and `v`, half extents along
/// them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rect {
    pub c: [f32; 2],
    pub u: [f32; 2],
    pub v: [f32; 2],
    pub half: [f32; 2],
}

impl Rect {
    pub fn short_side(&self) -> f32 {
        2.0 * self.half[0].min(self.half[1])
    }

    pub fn corners(&self) -> [[f32; 2]; 4] {
        let [a, b] = self.half;
        let p = |su: f32, sv: f32| {
            [
                self.c[0] + su * a * self.u[0] + sv * b * self.v[0],
                self.c[1] + su * a * self.u[1] + sv * b * self.v[1],
            ]
        };
        order_pts(&[p(-1.0, -1.0), p(1.0, -1.0), p(1.0, 1.0), p(-1.0, 1.0)])
    }
}

/// Minimum-area enclosing rectangle of a convex hull (one side lies on a
/// hull edge). `None` for fewer than three points.
pub(crate) fn min_area_rect(hull: &[[f32; 2]]) -> Option<Rect> {
    if hull.len() < 3 {
        return None;
    }
    let mut best: Option<(f32, Rect)> = None;
    for i in 0..hull.len() {
        let (p, q) = (hull[i], hull[(i + 1) % hull.len()]);
        let len = ((q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2)).sqrt();
        if len == 0.0 {
            continue;
        }
        let u = [(q[0] - p[0]) / len, (q[1] - p[1]) / len];
        let v = [-u[1], u[0]];
        let (mut u0, mut u1, mut v0, mut v1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for h in hull {
            let (pu, pv) = (h[0] * u[0] + h[1] * u[1], h[0] * v[0] + h[1] * v[1]);
            (u0, u1, v0, v1) = (u0.min(pu), u1.max(pu), v0.min(pv), v1.max(pv));
        }
        let area = (u1 - u0) * (v1 - v0);
        if best.as_ref().is_none_or(|(a, _)| area < *a) {
            let (cu, cv) = ((u0 + u1) / 2.0, (v0 + v1) / 2.0);
            let c = [cu * u[0] + cv * v[0], cu * u[1] + cv * v[1]];
            best = Some((
                area,
                Rect {
                    c,
                    u,
                    v,
                    half: [(u1 - u0) / 2.0, (v1 - v0) / 2.0],
                },
            ));
        }
    }
    best.map(|(_, r)| r)
}

/// PP-OCR's `get_mini_boxes` order: of the two leftmost points the upper is
/// top-left and the lower bottom-left; likewise on the right.
fn order_pts(p: &[[f32; 2]; 4]) -> [[f32; 2]; 4] {
    let mut s = *p;
    s.sort_by(|a, b| a[0].partial_cmp(&b[0]).unwrap_or(std::cmp::Ordering::Equal));
    let (tl, bl) = if s[1][1] > s[0][1] {
        (s[0], s[1])
    } else {
        (s[1], s[0])
    };
    let (tr, br) = if s[3][1] > s[2][1] {
        (s[2], s[3])
    } else {
        (s[3], s[2])
    };
    [tl, tr, br, bl]
}

/// PP-OCR's `order_points_clockwise` (ties on y keep the sort order).
pub(crate) fn order_clockwise(p: [[f32; 2]; 4]) -> [[f32; 2]; 4] {
    let mut s = p;
    s.sort_by(|a, b| a[0].partial_cmp(&b[0]).unwrap_or(std::cmp::Ordering::Equal));
    let (tl, bl) = if s[1][1] < s[0][1] {
        (s[1], s[0])
    } else {
        (s[0], s[1])
    };
    let (tr, br) = if s[3][1] < s[2][1] {
        (s[3], s[2])
    } else {
        (s[2], s[3])
    };
    [tl, tr, br, bl]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hull_and_rect_of_a_rotated_square() {
        let hull = convex_hull(vec![
            [0.0, 5.0],
            [5.0, 0.0],
            [10.0, 5.0],
            [5.0, 10.0],
            [5.0, 5.0],
        ]);
        assert_eq!(hull.len(), 4);
        let r = min_area_rect(&hull).expect("rect");
        assert!((r.half[0] * r.half[1] * 4.0 - 50.0).abs() < 1e-3);
    }
}
