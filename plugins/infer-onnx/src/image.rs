//! Input images and the few pixel operations the pipeline needs: colour
//! conversion, bilinear resampling of the whole image or of a (rotated)
//! rectangle, and normalisation into the models' CHW float layout.

use crate::OcrError;

/// Layout of one pixel in [`Image::pixels`]: the pipeline protocol's own
/// type, so frames from the media stage need no translation.
pub use citadel_proto::pipeline::PixelFormat;

/// A borrowed, read-only image: `height` rows of `stride` bytes each (the
/// last row may stop after its `width` pixels).
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    pub width: u32,
    pub height: u32,
    /// Bytes from the start of one row to the start of the next.
    pub stride: u32,
    pub format: PixelFormat,
    pub pixels: &'a [u8],
}

impl<'a> Image<'a> {
    /// A tightly packed image (`stride = width * bytes per pixel`).
    pub fn packed(width: u32, height: u32, format: PixelFormat, pixels: &'a [u8]) -> Self {
        let stride = width.saturating_mul(format.bytes_per_pixel());
        Self {
            width,
            height,
            stride,
            format,
            pixels,
        }
    }

    /// Checks the sizes against the buffer.
    pub fn validate(&self) -> Result<(), OcrError> {
        let bad = |m: String| Err(OcrError::BadImage(m));
        if self.width == 0 || self.height == 0 {
            return bad(format!("zero size {}x{}", self.width, self.height));
        }
        let row = u64::from(self.width) * u64::from(self.format.bytes_per_pixel());
        if u64::from(self.stride) < row {
            return bad(format!(
                "stride {} is less than width {} x {} bytes per pixel",
                self.stride,
                self.width,
                self.format.bytes_per_pixel()
            ));
        }
        let need = u64::from(self.stride) * (u64::from(self.height) - 1) + row;
        if (self.pixels.len() as u64) < need {
            return bad(format!(
                "buffer has {} bytes, {}x{} {:?} with stride {} needs {need}",
                self.pixels.len(),
                self.width,
                self.height,
                self.format,
                self.stride
            ));
        }
        Ok(())
    }
}

/// A packed BGR copy of the input (the channel order the PP-OCR models
/// were trained on).
pub(crate) struct Bgr {
    pub w: usize,
    pub h: usize,
    pub data: Vec<u8>,
}

impl Bgr {
    /// Converts a validated image.
    pub fn from_image(img: &Image) -> Self {
        let (w, h) = (img.width as usize, img.height as usize);
        let stride = img.stride as usize;
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            let row = &img.pixels[y * stride..];
            match img.format {
                PixelFormat::Bgr24 => data.extend_from_slice(&row[..w * 3]),
                PixelFormat::Rgb24 => {
                    for p in row[..w * 3].chunks_exact(3) {
                        data.extend_from_slice(&[p[2], p[1], p[0]]);
                    }
                }
                PixelFormat::Gray8 => {
                    for &g in &row[..w] {
                        data.extend_from_slice(&[g, g, g]);
                    }
                }
            }
        }
        Self { w, h, data }
    }

    /// Bilinear sample of channel `c` at continuous pixel coordinates
    /// (pixel centres at integers), edges replicated.
    #[inline]
    fn sample(&self, x: f32, y: f32, out: &mut [f32; 3]) {
        let x = x.clamp(0.0, (self.w - 1) as f32);
        let y = y.clamp(0.0, (self.h - 1) as f32);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let px = |xx: usize, yy: usize| (yy * self.w + xx) * 3;
        let (a, b, c, d) = (px(x0, y0), px(x1, y0), px(x0, y1), px(x1, y1));
        for (ch, o) in out.iter_mut().enumerate() {
            let top = f32::from(self.data[a + ch]) * (1.0 - fx) + f32::from(self.data[b + ch]) * fx;
            let bot = f32::from(self.data[c + ch]) * (1.0 - fx) + f32::from(self.data[d + ch]) * fx;
            *o = top * (1.0 - fy) + bot * fy;
        }
    }
}

/// `(v / 255 - 0.5) / 0.5`: PP-OCR's normalisation for all three models.
#[inline]
fn norm(v: f32) -> f32 {
    v / 127.5 - 1.0
}

/// Resizes the whole image to `dw x dh` (bilinear, half-pixel centres as
/// OpenCV's `INTER_LINEAR`) into a normalised CHW float tensor.
pub(crate) fn resize_normalize(src: &Bgr, dw: usize, dh: usize) -> Vec<f32> {
    let plane = dw * dh;
    let mut out = vec![0.0f32; plane * 3];
    let sx = src.w as f32 / dw as f32;
    let sy = src.h as f32 / dh as f32;
    let mut px = [0.0f32; 3];
    for v in 0..dh {
        let y = (v as f32 + 0.5) * sy - 0.5;
        for u in 0..dw {
            let x = (u as f32 + 0.5) * sx - 0.5;
            src.sample(x, y, &mut px);
            for (c, val) in px.iter().enumerate() {
                out[c * plane + v * dw + u] = norm(*val);
            }
        }
    }
    out
}

/// A rectangle of the source image, possibly rotated: crop pixel
/// `(cx, cy)` in `[0, w) x [0, h)` is source point
/// `origin + cx * ex + cy * ey`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crop {
    pub origin: [f32; 2],
    pub ex: [f32; 2],
    pub ey: [f32; 2],
    pub w: usize,
    pub h: usize,
}

impl Crop {
    /// The crop of box `[tl, tr, br, bl]`, as PP-OCR's
    /// `get_rotate_crop_image`: size from the longer opposite edges, and
    /// turned 90 degrees counter-clockwise when it is much taller than wide.
    pub fn from_box(b: &[[f32; 2]; 4]) -> Self {
        let dist =
            |p: [f32; 2], q: [f32; 2]| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt();
        let w = dist(b[0], b[1]).max(dist(b[2], b[3])).floor().max(1.0);
        let h = dist(b[0], b[3]).max(dist(b[1], b[2])).floor().max(1.0);
        let ex = [(b[1][0] - b[0][0]) / w, (b[1][1] - b[0][1]) / w];
        let ey = [(b[3][0] - b[0][0]) / h, (b[3][1] - b[0][1]) / h];
        let crop = Self {
            origin: b[0],
            ex,
            ey,
            w: w as usize,
            h: h as usize,
        };
        if h / w >= 1.5 {
            // np.rot90: new(x', y') = old(x = w - y', y = x').
            let origin = [b[0][0] + w * ex[0], b[0][1] + w * ex[1]];
            Self {
                origin,
                ex: ey,
                ey: [-ex[0], -ex[1]],
                w: crop.h,
                h: crop.w,
            }
        } else {
            crop
        }
    }

    /// The same crop turned by 180 degrees.
    pub fn rotated_180(&self) -> Self {
        let (w, h) = (self.w as f32, self.h as f32);
        let origin = [
            self.origin[0] + w * self.ex[0] + h * self.ey[0],
            self.origin[1] + w * self.ex[1] + h * self.ey[1],
        ];
        Self {
            origin,
            ex: [-self.ex[0], -self.ex[1]],
            ey: [-self.ey[0], -self.ey[1]],
            ..*self
        }
    }

    /// Width / height.
    pub fn aspect(&self) -> f32 {
        self.w as f32 / self.h as f32
    }

    /// Resamples the crop to `out_w x out_h` and writes it normalised into
    /// the CHW tensor `dst` whose rows are `row_w` wide (the rest of each row
    /// is left as is: the zero padding of PP-OCR).
    pub fn sample_into(
        &self,
        src: &Bgr,
        out_w: usize,
        out_h: usize,
        dst: &mut [f32],
        row_w: usize,
    ) {
        let plane = row_w * out_h;
        let sx = self.w as f32 / out_w as f32;
        let sy = self.h as f32 / out_h as f32;
        let mut px = [0.0f32; 3];
        for v in 0..out_h {
            let cy = ((v as f32 + 0.5) * sy - 0.5).max(0.0);
            for u in 0..out_w {
                let cx = ((u as f32 + 0.5) * sx - 0.5).max(0.0);
                let x = self.origin[0] + cx * self.ex[0] + cy * self.ey[0];
                let y = self.origin[1] + cx * self.ex[1] + cy * self.ey[1];
                src.sample(x, y, &mut px);
                for (c, val) in px.iter().enumerate() {
                    dst[c * plane + v * row_w + u] = norm(*val);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_sizes() {
        let px = [0u8; 30];
        assert!(Image::packed(5, 2, PixelFormat::Bgr24, &px)
            .validate()
            .is_ok());
        assert!(Image::packed(5, 3, PixelFormat::Bgr24, &px)
            .validate()
            .is_err());
        assert!(Image::packed(0, 3, PixelFormat::Gray8, &px)
            .validate()
            .is_err());
        let img = Image {
            width: 5,
            height: 2,
            stride: 4,
            format: PixelFormat::Gray8,
            pixels: &px,
        };
        assert!(img.validate().is_err());
        // Last row may be short of a full stride.
        let img = Image {
            width: 5,
            height: 2,
            stride: 25,
            format: PixelFormat::Gray8,
            pixels: &px,
        };
        assert!(img.validate().is_ok());
    }

    #[test]
    fn rgb_and_gray_become_bgr() {
        let rgb = [1u8, 2, 3, 9, 4, 5, 6, 9];
        let img = Image {
            width: 1,
            height: 2,
            stride: 4,
            format: PixelFormat::Rgb24,
            pixels: &rgb,
        };
        assert_eq!(Bgr::from_image(&img).data, vec![3, 2, 1, 6, 5, 4]);
        let g = [7u8, 8];
        assert_eq!(
            Bgr::from_image(&Image::packed(2, 1, PixelFormat::Gray8, &g)).data,
            vec![7, 7, 7, 8, 8, 8]
        );
    }

    #[test]
    fn crop_rotations() {
        let b = [[10.0, 20.0], [110.0, 20.0], [110.0, 50.0], [10.0, 50.0]];
        let c = Crop::from_box(&b);
        assert_eq!((c.w, c.h), (100, 30));
        let r = c.rotated_180();
        assert_eq!(r.origin, [110.0, 50.0]);
        let tall = [[0.0, 0.0], [10.0, 0.0], [10.0, 40.0], [0.0, 40.0]];
        let t = Crop::from_box(&tall);
        assert_eq!((t.w, t.h), (40, 10));
    }
}
