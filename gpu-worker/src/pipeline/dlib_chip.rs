//! dlib's face chip, reproduced step for step: `get_face_chip_details(shape, size, padding)`
//! (a least-squares similarity transform of dlib's mean face onto 33 landmarks, turned into a
//! rotated rectangle) and `extract_image_chip` (bilinear sampling, from a 2:1 image pyramid
//! level when the chip is much smaller than the face, values truncated to u8 like dlib's
//! `assign_pixel`, black outside the image). The golden test `tests/golden_dlib_chip.rs`
//! compares the result with chips made by dlib itself.

use image::RgbImage;

use super::align::Landmarks;
pub use super::similarity::{Similarity, fit_similarity};

/// dlib's mean face (`mean_face_shape_x/y`) for landmarks 27–54 and 60–64, in 0..1.
pub(super) const DLIB_TEMPLATE: [(usize, f64, f64); 33] = [
    (27, 0.490127, 0.203352),
    (28, 0.490127, 0.307009),
    (29, 0.490127, 0.409805),
    (30, 0.490127, 0.515625),
    (31, 0.36688, 0.587326),
    (32, 0.426036, 0.609345),
    (33, 0.490127, 0.628106),
    (34, 0.554217, 0.609345),
    (35, 0.613373, 0.587326),
    (36, 0.121737, 0.216423),
    (37, 0.187122, 0.178758),
    (38, 0.265825, 0.179852),
    (39, 0.334606, 0.231733),
    (40, 0.260918, 0.245099),
    (41, 0.182743, 0.244077),
    (42, 0.645647, 0.231733),
    (43, 0.714428, 0.179852),
    (44, 0.793132, 0.178758),
    (45, 0.858516, 0.216423),
    (46, 0.79751, 0.244077),
    (47, 0.719335, 0.245099),
    (48, 0.254149, 0.780233),
    (49, 0.340985, 0.745405),
    (50, 0.428858, 0.727388),
    (51, 0.490127, 0.742578),
    (52, 0.551395, 0.727388),
    (53, 0.639268, 0.745405),
    (54, 0.726104, 0.780233),
    (60, 0.290379, 0.784792),
    (61, 0.428096, 0.778746),
    (62, 0.490127, 0.785343),
    (63, 0.552157, 0.778746),
    (64, 0.689874, 0.784792),
];

/// The chip-to-image transform of dlib's `get_face_chip_details(landmarks, size, padding)`.
pub fn dlib_chip_transform(pts: &Landmarks, size: usize, padding: f64) -> Similarity {
    let (from, to): (Vec<[f64; 2]>, Vec<[f64; 2]>) = DLIB_TEMPLATE
        .iter()
        .map(|&(i, mx, my)| {
            let t = |m: f64| (padding + m) / (1.0 + 2.0 * padding) * size as f64;
            ([t(mx), t(my)], pts[i])
        })
        .unzip();
    fit_similarity(&from, &to)
}

/// An axis-aligned rectangle with real corners, dlib's `drectangle` (inclusive: a width is
/// `right - left + 1`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct DRect {
    l: f64,
    t: f64,
    r: f64,
    b: f64,
}

impl DRect {
    fn centred(c: [f64; 2], width: f64, height: f64) -> Self {
        let (hw, hh) = ((width - 1.0) / 2.0, (height - 1.0) / 2.0);
        Self {
            l: c[0] - hw,
            t: c[1] - hh,
            r: c[0] + hw,
            b: c[1] + hh,
        }
    }

    fn centre(&self) -> [f64; 2] {
        [(self.l + self.r) / 2.0, (self.t + self.b) / 2.0]
    }

    fn area(&self) -> f64 {
        if self.t > self.b || self.l > self.r {
            return 0.0;
        }
        (self.r - self.l + 1.0) * (self.b - self.t + 1.0)
    }

    /// `pyramid_down<2>::rect_down`: where the corners land one pyramid level down.
    fn down(&self) -> Self {
        let (dx, dy) = (1.25, 0.75);
        Self {
            l: self.l / 2.0 - dx,
            t: self.t / 2.0 - dy,
            r: self.r / 2.0 - dx,
            b: self.b / 2.0 - dy,
        }
    }

    fn translate(&self, dx: f64, dy: f64) -> Self {
        Self {
            l: self.l + dx,
            t: self.t + dy,
            r: self.r + dx,
            b: self.b + dy,
        }
    }
}

/// Rotates `p` about `c` by `angle` radians.
fn rotate(c: [f64; 2], p: [f64; 2], angle: f64) -> [f64; 2] {
    let (s, co) = angle.sin_cos();
    let (x, y) = (p[0] - c[0], p[1] - c[1]);
    [co * x - s * y + c[0], s * x + co * y + c[1]]
}

/// Where a chip is cut from: dlib's `chip_details` (rectangle, rotation, side in pixels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChipDetails {
    rect: DRect,
    angle: f64,
    size: usize,
}

impl ChipDetails {
    /// `get_face_chip_details(landmarks, size, padding)`.
    pub fn for_face(pts: &Landmarks, size: usize, padding: f64) -> Self {
        let tform = dlib_chip_transform(pts, size, padding);
        let half = size as f64 / 2.0;
        Self {
            rect: DRect::centred(
                tform.apply([half, half]),
                size as f64 * tform.scale(),
                size as f64 * tform.scale(),
            ),
            angle: tform.b.atan2(tform.a),
            size,
        }
    }

    /// The three corners (top-left, top-right, bottom-left) of `rect` turned by the angle.
    fn corners(&self, rect: &DRect) -> [[f64; 2]; 3] {
        let c = rect.centre();
        [[rect.l, rect.t], [rect.r, rect.t], [rect.l, rect.b]].map(|p| rotate(c, p, self.angle))
    }
}

/// A borrowed or owned RGB8 raster (an image, a crop of it, or a pyramid level).
struct Raster {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl Raster {
    /// The integer rectangle `[l, r] × [t, b]` (inclusive) of `img`.
    fn crop(img: &RgbImage, l: usize, t: usize, r: usize, b: usize) -> Self {
        let (width, height) = (r + 1 - l, b + 1 - t);
        let stride = img.width() as usize * 3;
        let raw = img.as_raw();
        let mut data = Vec::with_capacity(width * height * 3);
        for y in t..=b {
            data.extend_from_slice(&raw[y * stride + l * 3..y * stride + (r + 1) * 3]);
        }
        Self {
            width,
            height,
            data,
        }
    }

    /// `pyramid_down<2>` on an RGB image: a separable [1 4 6 4 1] filter with every other row
    /// and column dropped, in 16-bit integers, divided by 256 with truncation.
    fn down(&self) -> Self {
        let (w, h) = (self.width, self.height);
        if w <= 8 || h <= 8 {
            return Self {
                width: 0,
                height: 0,
                data: Vec::new(),
            };
        }
        let (tw, dh) = ((w - 3) / 2, (h - 3) / 2);
        const TAPS: [u16; 5] = [1, 4, 6, 4, 1];
        let mut rows = vec![0u16; h * tw * 3];
        for y in 0..h {
            let src = &self.data[y * w * 3..(y + 1) * w * 3];
            for c in 0..tw {
                for ch in 0..3 {
                    rows[(y * tw + c) * 3 + ch] = TAPS
                        .iter()
                        .enumerate()
                        .map(|(k, t)| t * u16::from(src[(2 * c + k) * 3 + ch]))
                        .sum();
                }
            }
        }
        let mut data = vec![0u8; dh * tw * 3];
        for (dr, y) in (2..h - 2).step_by(2).take(dh).enumerate() {
            for i in 0..tw * 3 {
                let sum: u16 = TAPS
                    .iter()
                    .enumerate()
                    .map(|(k, t)| t * rows[(y + k - 2) * tw * 3 + i])
                    .sum();
                data[dr * tw * 3 + i] = (sum / 256) as u8;
            }
        }
        Self {
            width: tw,
            height: dh,
            data,
        }
    }

    /// dlib's `interpolate_bilinear` with truncation; `None` when a neighbour is outside.
    fn bilinear(&self, x: f64, y: f64, out: &mut [f32]) -> bool {
        let (l, t) = (x.floor(), y.floor());
        if l < 0.0 || t < 0.0 || l + 1.0 >= self.width as f64 || t + 1.0 >= self.height as f64 {
            return false;
        }
        let (li, ti) = (l as usize, t as usize);
        let (fx, fy) = (x - l, y - t);
        let at =
            |yy: usize, xx: usize, c: usize| f64::from(self.data[(yy * self.width + xx) * 3 + c]);
        for (c, o) in out.iter_mut().enumerate() {
            let top = (1.0 - fx) * at(ti, li, c) + fx * at(ti, li + 1, c);
            let bottom = (1.0 - fx) * at(ti + 1, li, c) + fx * at(ti + 1, li + 1, c);
            let v = (1.0 - fy) * top + fy * bottom;
            *o = v.clamp(0.0, 255.0).trunc() as f32;
        }
        true
    }
}

/// `extract_image_chip(img, details)`: the `size`×`size` RGB chip, values 0..255 (as f32),
/// row-major, black where the chip leaves the image.
pub fn extract_chip(img: &RgbImage, details: &ChipDetails) -> Vec<f32> {
    let size = details.size;
    let mut out = vec![0f32; size * size * 3];
    let (w, h) = (img.width() as usize, img.height() as usize);
    if size < 2 || w == 0 || h == 0 {
        return out;
    }
    let pixels = (size * size) as f64;
    // How deep the pyramid must go, and the margin the crop keeps around the chip.
    let (mut depth, mut grow) = (0usize, 2.0);
    let mut r = details.rect.down();
    while r.area() > pixels {
        r = r.down();
        depth += 1;
        grow = grow * 2.0 + 2.0;
    }
    // The crop of the image the pyramid is built from: the turned chip plus the margin,
    // clipped to the image, with corners rounded like dlib's drectangle → rectangle.
    let pts = details.corners(&details.rect);
    let far = rotate(
        details.rect.centre(),
        [details.rect.r, details.rect.b],
        details.angle,
    );
    let xs = pts.iter().chain([&far]).map(|p| p[0]);
    let ys = pts.iter().chain([&far]).map(|p| p[1]);
    let round = |v: f64| (v + 0.5).floor();
    let l = round((xs.clone().fold(f64::INFINITY, f64::min) - grow).max(0.0));
    let t = round((ys.clone().fold(f64::INFINITY, f64::min) - grow).max(0.0));
    let r_ = round((xs.fold(f64::NEG_INFINITY, f64::max) + grow).min(w as f64 - 1.0));
    let b = round((ys.fold(f64::NEG_INFINITY, f64::max) + grow).min(h as f64 - 1.0));
    if !(l <= r_ && t <= b) {
        return out; // the chip lies wholly outside the image
    }
    let mut level = Raster::crop(img, l as usize, t as usize, r_ as usize, b as usize);
    // Which level to sample: the last one whose chip rectangle is still larger than the chip.
    let mut rect = details.rect.translate(-l, -t);
    let mut levels_down = 0;
    while rect.down().area() > pixels && levels_down < depth {
        rect = rect.down();
        level = level.down();
        levels_down += 1;
    }
    let [tl, tr, bl] = details.corners(&rect);
    let step = (size - 1) as f64;
    let (ux, uy) = ((tr[0] - tl[0]) / step, (tr[1] - tl[1]) / step);
    let (vx, vy) = ((bl[0] - tl[0]) / step, (bl[1] - tl[1]) / step);
    for row in 0..size {
        for col in 0..size {
            let (c, rr) = (col as f64, row as f64);
            let x = tl[0] + ux * c + vx * rr;
            let y = tl[1] + uy * c + vy * rr;
            let at = (row * size + col) * 3;
            level.bilinear(x, y, &mut out[at..at + 3]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_recovers_a_known_transform() {
        let truth = Similarity {
            a: 1.2 * 0.5f64.cos(),
            b: 1.2 * 0.5f64.sin(),
            tx: 30.0,
            ty: -7.0,
        };
        let from: Vec<[f64; 2]> = (0..10)
            .map(|i| [i as f64 * 3.0, (i * i) as f64 * 0.7])
            .collect();
        let to: Vec<[f64; 2]> = from.iter().map(|&p| truth.apply(p)).collect();
        let fit = fit_similarity(&from, &to);
        for (x, y) in [
            (fit.a, truth.a),
            (fit.b, truth.b),
            (fit.tx, truth.tx),
            (fit.ty, truth.ty),
        ] {
            assert!((x - y).abs() < 1e-9, "{fit:?} vs {truth:?}");
        }
        assert!((fit.scale() - 1.2).abs() < 1e-9);
    }

    #[test]
    fn dlib_template_maps_to_itself() {
        // Landmarks placed exactly on the 150/0.25 template give the identity transform.
        let mut pts = [[0f64; 2]; 68];
        for &(i, mx, my) in &DLIB_TEMPLATE {
            pts[i] = [(0.25 + mx) / 1.5 * 150.0, (0.25 + my) / 1.5 * 150.0];
        }
        let t = dlib_chip_transform(&pts, 150, 0.25);
        assert!(
            (t.a - 1.0).abs() < 1e-9 && t.b.abs() < 1e-9 && t.tx.abs() < 1e-9 && t.ty.abs() < 1e-9
        );
        // dlib's rectangle is centred on the chip's centre, so chip pixel c samples c + 0.5.
        let img = RgbImage::from_fn(200, 200, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let chip = extract_chip(&img, &ChipDetails::for_face(&pts, 150, 0.25));
        assert_eq!(
            &chip[(10 * 150 + 20) * 3..(10 * 150 + 20) * 3 + 3],
            &[20.0, 10.0, 7.0]
        );
    }

    #[test]
    fn pyramid_level_keeps_flat_colour_and_dlib_sizes() {
        let img = RgbImage::from_pixel(21, 12, image::Rgb([200, 100, 9]));
        let down = Raster::crop(&img, 0, 0, 20, 11).down();
        assert_eq!((down.width, down.height), (9, 4));
        // 16 × 16 weights sum to 256: a flat image stays flat.
        assert!(down.data.chunks(3).all(|p| p == [200, 100, 9]));
        assert_eq!(Raster::crop(&img, 0, 0, 7, 7).down().width, 0);
    }

    #[test]
    fn large_faces_are_sampled_from_a_pyramid_level() {
        // A face 4× the chip: the chip still shows the flat colour, not black.
        let mut pts = [[0f64; 2]; 68];
        for &(i, mx, my) in &DLIB_TEMPLATE {
            pts[i] = [
                100.0 + (0.25 + mx) / 1.5 * 600.0,
                50.0 + (0.25 + my) / 1.5 * 600.0,
            ];
        }
        let img = RgbImage::from_pixel(800, 700, image::Rgb([90, 91, 92]));
        let details = ChipDetails::for_face(&pts, 150, 0.25);
        let chip = extract_chip(&img, &details);
        assert!(
            chip.chunks(3).all(|p| p == [90.0, 91.0, 92.0]),
            "{:?}",
            &chip[..6]
        );
        // Outside the image the chip is black.
        let img = RgbImage::from_pixel(300, 300, image::Rgb([90, 91, 92]));
        let chip = extract_chip(&img, &details);
        assert_eq!(&chip[(149 * 150 + 149) * 3..], &[0.0, 0.0, 0.0]);
    }
}
