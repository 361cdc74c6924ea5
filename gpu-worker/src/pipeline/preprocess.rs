//! face-api's "tensor path" input preparation: crop, pad to square (top-left for the detector,
//! centred for the landmark and recognition nets), TensorFlow's legacy bilinear resize (no
//! half-pixel offset, no anti-aliasing, computed in f64) and per-network normalisation, written
//! straight into an NHWC f32 batch buffer. The padding is virtual: the padded square is never
//! materialised.

use image::RgbImage;
use rayon::prelude::*;

/// Integer rectangle in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl CropRect {
    /// The whole image.
    pub fn full(img: &RgbImage) -> Self {
        Self {
            x: 0,
            y: 0,
            width: img.width(),
            height: img.height(),
        }
    }
}

/// Input normalisation of a network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalize {
    /// SSD: `v / 127.5 - 1`.
    Ssd,
    /// Landmark and recognition nets: `(v - [122.782, 117.001, 104.298]) / 255`.
    MeanRgb,
}

const MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];

impl Normalize {
    /// Normalises channel `c` of value `v` with the same f32 operations as face-api's tensors.
    #[inline]
    pub fn apply(self, c: usize, v: f32) -> f32 {
        match self {
            Normalize::Ssd => v * (1.0 / 127.5f64) as f32 - 1.0,
            Normalize::MeanRgb => (v - MEAN_RGB[c]) * (1.0 / 255f64) as f32,
        }
    }
}

/// `(before, after)` zero padding that makes a `short`×`long` side square.
pub fn square_padding(short: u32, long: u32, centered: bool) -> (u32, u32) {
    let diff = long - short.min(long);
    // JS Math.round(diff / 2): .5 rounds up, so an odd diff puts the extra pixel after.
    let after = if centered { diff.div_ceil(2) } else { diff };
    (diff - after, after)
}

/// Writes the `size`×`size`×3 network input for `region` of `img` into `out`: pad to square,
/// resize, normalise. `out.len()` must be `size*size*3`; an empty region gives zeros.
pub fn pad_resize_into(
    img: &RgbImage,
    region: CropRect,
    centered: bool,
    size: usize,
    norm: Normalize,
    out: &mut [f32],
) {
    let (w, h) = (region.width, region.height);
    let (before, _) = if h < w {
        square_padding(h, w, centered)
    } else {
        square_padding(w, h, centered)
    };
    let (ox, oy) = if h < w { (0, before) } else { (before, 0) };
    let canvas = Canvas {
        side: w.max(h),
        x: ox,
        y: oy,
    };
    canvas_resize_into(img, region, canvas, size, norm, out);
}

/// A black square the region is placed on before the resize: its side and where the
/// region's top-left corner sits in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canvas {
    pub side: u32,
    pub x: u32,
    pub y: u32,
}

impl Canvas {
    /// A square `factor` times the image's longer side, and at least `min_side`, with the
    /// image in its centre.
    pub fn centred(width: u32, height: u32, factor: f64, min_side: u32) -> Self {
        let side = (f64::from(width.max(height)) * factor.max(1.0)).round() as u32;
        let side = side.max(min_side);
        Self {
            side,
            x: (side - width) / 2,
            y: (side - height) / 2,
        }
    }
}

/// Writes the `size`×`size`×3 network input for `region` of `img` placed on `canvas`
/// (black elsewhere), resized and normalised. `out.len()` must be `size*size*3`; an empty
/// region or canvas gives zeros.
pub fn canvas_resize_into(
    img: &RgbImage,
    region: CropRect,
    canvas: Canvas,
    size: usize,
    norm: Normalize,
    out: &mut [f32],
) {
    let (w, h) = (region.width as usize, region.height as usize);
    let s = canvas.side as usize;
    if w == 0 || h == 0 || s == 0 || size == 0 || out.len() != size * size * 3 {
        out.fill(0.0);
        return;
    }
    let (ox, oy) = (canvas.x as usize, canvas.y as usize);
    let raw = img.as_raw();
    let stride = img.width() as usize * 3;
    // When no resize is needed (`s == size`) the ratio is 1 and every weight 0, so each value
    // is exactly its source pixel.
    let ratio = s as f64 / size as f64;
    // Byte offset within an image row of padded-square column `x`; `None` in the padding.
    let column = |x: usize| {
        x.checked_sub(ox)
            .filter(|&ix| ix < w)
            .map(|ix| (region.x as usize + ix) * 3)
    };
    // Image row of padded-square row `y`; `None` in the padding.
    let image_row = |y: usize| {
        y.checked_sub(oy).filter(|&iy| iy < h).and_then(|iy| {
            let start = (region.y as usize + iy) * stride;
            raw.get(start..start + stride)
        })
    };
    // Per output column: its two source columns and the weight of the second.
    let xs: Vec<(Option<usize>, Option<usize>, f64)> = (0..size)
        .map(|c| {
            let fx = ratio * c as f64;
            let x0 = fx.floor() as usize;
            let x1 = (fx.ceil() as usize).min(s - 1);
            (column(x0), column(x1), fx - x0 as f64)
        })
        .collect();
    out.par_chunks_mut(size * 3)
        .enumerate()
        .for_each(|(r, out_row)| {
            let fy = ratio * r as f64;
            let y0 = fy.floor() as usize;
            let (row0, row1) = (image_row(y0), image_row((fy.ceil() as usize).min(s - 1)));
            let dy = fy - y0 as f64;
            for (o, &(x0, x1, dx)) in out_row.chunks_exact_mut(3).zip(&xs) {
                for (c, v) in o.iter_mut().enumerate() {
                    let at = |row: Option<&[u8]>, x: Option<usize>| match (row, x) {
                        (Some(row), Some(x)) => row.get(x + c).map_or(0.0, |&v| f64::from(v)),
                        _ => 0.0,
                    };
                    let (p00, p01) = (at(row0, x0), at(row0, x1));
                    let (p10, p11) = (at(row1, x0), at(row1, x1));
                    let top = p00 + (p01 - p00) * dx;
                    let bot = p10 + (p11 - p10) * dx;
                    *v = norm.apply(c, (top + (bot - top) * dy) as f32);
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_padding_follows_js_round() {
        assert_eq!(square_padding(3, 8, true), (2, 3));
        assert_eq!(square_padding(4, 8, true), (2, 2));
        assert_eq!(square_padding(3, 8, false), (0, 5));
        assert_eq!(square_padding(8, 8, true), (0, 0));
    }

    #[test]
    fn pads_then_resizes_like_tf() {
        // 2 wide, 1 high, not centred: padded square is [[a, b], [0, 0]].
        let img = RgbImage::from_raw(2, 1, vec![10, 10, 10, 30, 30, 30]).expect("image");
        let mut out = vec![0f32; 4 * 4 * 3];
        let id = |v: f32| v; // compare raw values via MeanRgb inverse
        pad_resize_into(
            &img,
            CropRect::full(&img),
            false,
            4,
            Normalize::Ssd,
            &mut out,
        );
        let back: Vec<f32> = out
            .iter()
            .step_by(3)
            .map(|&v| id((v + 1.0) * 127.5))
            .collect();
        // ratio 0.5: row 0 = [10, 20, 30, 30], row 1 = half-way to zero, rows 2..3 = 0.
        let expect = [
            10.0, 20.0, 30.0, 30.0, 5.0, 10.0, 15.0, 15.0, 0.0, 0.0, 0.0, 0.0,
        ];
        for (a, b) in back.iter().zip(expect) {
            assert!((a - b).abs() < 1e-4, "{back:?}");
        }
        // Centred: the single row sits at the bottom half of a 2×2 square (before=0, after=1).
        let mut sq = vec![0f32; 2 * 2 * 3];
        pad_resize_into(&img, CropRect::full(&img), true, 2, Normalize::Ssd, &mut sq);
        assert!((sq[0] - Normalize::Ssd.apply(0, 10.0)).abs() < 1e-6);
        assert!((sq[6] - Normalize::Ssd.apply(0, 0.0)).abs() < 1e-6);
    }
}
