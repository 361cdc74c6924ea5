//! Landmark decoding and the two crops for the descriptor net:
//! - [`Alignment::FaceApi`] (default, golden-exact): face-api's axis-aligned square around
//!   the eyes and mouth (`landmarks.align(null, {useDlibAlignment: true})`).
//! - [`Alignment::Dlib`]: dlib's `get_face_chip_details(shape, 150, 0.25)` +
//!   `extract_image_chip`: a least-squares similarity transform (rotation, scale,
//!   translation) of dlib's mean face onto 33 landmarks, sampled bilinearly.

use std::{fmt, str::FromStr};

use image::RgbImage;

use super::{
    detection::{BBox, clip_box},
    preprocess::CropRect,
};

/// How the descriptor crop is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alignment {
    /// face-api's square crop, no rotation; reproduces the golden descriptors.
    #[default]
    FaceApi,
    /// dlib's similarity-transform face chip (150 px, padding 0.25).
    Dlib,
}

impl FromStr for Alignment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "faceapi" | "face-api" => Ok(Alignment::FaceApi),
            "dlib" => Ok(Alignment::Dlib),
            other => Err(format!(
                "unknown alignment {other:?}: expected faceapi or dlib"
            )),
        }
    }
}

impl fmt::Display for Alignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Alignment::FaceApi => "faceapi",
            Alignment::Dlib => "dlib",
        })
    }
}

/// 68 points in image pixels.
pub type Landmarks = [[f64; 2]; 68];

/// Maps the raw landmark output (136 values in 0..1 of the 112 padded input) of a face whose
/// landmark crop was `crop` and whose detection box was `bbox` to image pixels. Keeps
/// face-api's quirks: symmetric half-padding and the unfloored box origin.
pub fn landmarks_to_image(raw: &[f32], crop: CropRect, bbox: &BBox) -> Landmarks {
    let (cw, ch) = (crop.width as f32, crop.height as f32);
    let s = 112f32 / cw.max(ch);
    let (iw, ih) = (cw * s, ch * s);
    let pad_x = if iw < ih { (iw - ih).abs() / 2.0 } else { 0.0 };
    let pad_y = if ih < iw { (iw - ih).abs() / 2.0 } else { 0.0 };
    let mut pts = [[0f64; 2]; 68];
    for (j, p) in pts.iter_mut().enumerate() {
        let (x, y) = (
            raw.get(2 * j).copied().unwrap_or(0.0),
            raw.get(2 * j + 1).copied().unwrap_or(0.0),
        );
        let rx = (x * 112.0 - pad_x) / iw;
        let ry = (y * 112.0 - pad_y) / ih;
        *p = [
            f64::from(rx) * f64::from(cw) + bbox.x,
            f64::from(ry) * f64::from(ch) + bbox.y,
        ];
    }
    pts
}

fn mean(pts: &Landmarks, range: std::ops::Range<usize>) -> [f64; 2] {
    let n = range.len() as f64;
    let (sx, sy) = range.fold((0.0, 0.0), |(sx, sy), j| (sx + pts[j][0], sy + pts[j][1]));
    [sx / n, sy / n]
}

/// face-api's descriptor crop: a square from the eye and mouth centres, clipped and floored.
pub fn faceapi_crop(pts: &Landmarks, landmark_crop: CropRect, w: u32, h: u32) -> Option<CropRect> {
    let (le, re, mo) = (mean(pts, 36..42), mean(pts, 42..48), mean(pts, 48..68));
    let dist = |p: [f64; 2]| ((mo[0] - p[0]).powi(2) + (mo[1] - p[1]).powi(2)).sqrt();
    let size = ((dist(le) + dist(re)) / 2.0 / 0.45).floor();
    let c = [(le[0] + re[0] + mo[0]) / 3.0, (le[1] + re[1] + mo[1]) / 3.0];
    let x = (c[0] - 0.5 * size).max(0.0).floor();
    let y = (c[1] - 0.43 * size).max(0.0).floor();
    let b = BBox {
        x,
        y,
        width: size.min(f64::from(landmark_crop.width) + x),
        height: size.min(f64::from(landmark_crop.height) + y),
    };
    clip_box(&b, w, h)
}

/// dlib's mean face (`mean_face_shape_x/y`) for landmarks 27–54 and 60–64, in 0..1.
const DLIB_TEMPLATE: [(usize, f64, f64); 33] = [
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

/// A 2-D similarity transform `q ↦ [[a, -b], [b, a]]·q + t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [
            self.a * p[0] - self.b * p[1] + self.tx,
            self.b * p[0] + self.a * p[1] + self.ty,
        ]
    }

    /// Uniform scale factor.
    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }
}

/// Least-squares similarity mapping `from[i]` onto `to[i]` (Umeyama 1991). In 2-D the
/// rotation-only solution has this closed form, which equals dlib's SVD route whenever the
/// best fit is a proper rotation (always, for a face template onto landmarks).
pub fn fit_similarity(from: &[[f64; 2]], to: &[[f64; 2]]) -> Similarity {
    let n = from.len().min(to.len()).max(1) as f64;
    let centroid = |v: &[[f64; 2]]| {
        let (sx, sy) = v
            .iter()
            .fold((0.0, 0.0), |(sx, sy), p| (sx + p[0], sy + p[1]));
        [sx / n, sy / n]
    };
    let (mf, mt) = (centroid(from), centroid(to));
    let (mut var, mut a, mut b) = (0.0, 0.0, 0.0);
    for (f, t) in from.iter().zip(to) {
        let (fx, fy) = (f[0] - mf[0], f[1] - mf[1]);
        let (tx, ty) = (t[0] - mt[0], t[1] - mt[1]);
        var += fx * fx + fy * fy;
        a += fx * tx + fy * ty;
        b += fx * ty - fy * tx;
    }
    let (a, b) = if var > 0.0 {
        (a / var, b / var)
    } else {
        (1.0, 0.0)
    };
    Similarity {
        a,
        b,
        tx: mt[0] - (a * mf[0] - b * mf[1]),
        ty: mt[1] - (b * mf[0] + a * mf[1]),
    }
}

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

/// Samples a `size`×`size` RGB chip (values 0..255, rounded like dlib's u8 chips) at
/// `image = transform(col, row)`, bilinearly, black outside the image. When the chip is
/// smaller than the face (scale > 1) each pixel averages ⌈scale⌉² sub-samples, standing in
/// for dlib's pyramid down-sampling (an approximation).
pub fn extract_chip(img: &RgbImage, transform: &Similarity, size: usize) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    let n = transform.scale().ceil().clamp(1.0, 8.0) as usize;
    let mut out = vec![0f32; size * size * 3];
    let sample = |x: f64, y: f64, acc: &mut [f64; 3]| {
        let (x0, y0) = (x.floor(), y.floor());
        if x0 < 0.0 || y0 < 0.0 || x0 + 1.0 >= w as f64 || y0 + 1.0 >= h as f64 {
            return;
        }
        let (xi, yi) = (x0 as usize, y0 as usize);
        let (dx, dy) = (x - x0, y - y0);
        for (c, a) in acc.iter_mut().enumerate() {
            let p = |yy: usize, xx: usize| f64::from(raw[(yy * w + xx) * 3 + c]);
            let top = p(yi, xi) * (1.0 - dx) + p(yi, xi + 1) * dx;
            let bot = p(yi + 1, xi) * (1.0 - dx) + p(yi + 1, xi + 1) * dx;
            *a += top * (1.0 - dy) + bot * dy;
        }
    };
    for r in 0..size {
        for col in 0..size {
            let mut acc = [0f64; 3];
            for sy in 0..n {
                for sx in 0..n {
                    let off = |s: usize| (s as f64 + 0.5) / n as f64 - 0.5;
                    let p = transform.apply([col as f64 + off(sx), r as f64 + off(sy)]);
                    sample(p[0], p[1], &mut acc);
                }
            }
            for (c, a) in acc.iter().enumerate() {
                out[(r * size + col) * 3 + c] =
                    (a / (n * n) as f64).round().clamp(0.0, 255.0) as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alignment() {
        assert_eq!("faceapi".parse::<Alignment>(), Ok(Alignment::FaceApi));
        assert_eq!("DLIB".parse::<Alignment>(), Ok(Alignment::Dlib));
        assert!("x".parse::<Alignment>().is_err());
        assert_eq!(Alignment::default().to_string(), "faceapi");
    }

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
        let img = RgbImage::from_fn(200, 200, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let chip = extract_chip(&img, &t, 150);
        assert_eq!(
            &chip[(10 * 150 + 20) * 3..(10 * 150 + 20) * 3 + 3],
            &[20.0, 10.0, 7.0]
        );
    }

    #[test]
    fn faceapi_crop_from_landmarks() {
        let mut pts = [[0f64; 2]; 68];
        for p in &mut pts[36..42] {
            *p = [40.0, 50.0];
        }
        for p in &mut pts[42..48] {
            *p = [80.0, 50.0];
        }
        for p in &mut pts[48..68] {
            *p = [60.0, 90.0];
        }
        // d = sqrt(20² + 40²) = 44.72; size = floor(99.38) = 99; centre (60, 63.33).
        let lc = CropRect {
            x: 0,
            y: 0,
            width: 120,
            height: 120,
        };
        let crop = faceapi_crop(&pts, lc, 1000, 1000).expect("crop");
        assert_eq!(
            crop,
            CropRect {
                x: 10,
                y: 20,
                width: 99,
                height: 99
            }
        );
    }

    #[test]
    fn landmark_decoding_undoes_padding() {
        // A 56×112 crop is padded by 28 px on each side in x before the 112 resize.
        let crop = CropRect {
            x: 10,
            y: 20,
            width: 56,
            height: 112,
        };
        let bbox = BBox {
            x: 10.5,
            y: 20.25,
            width: 56.0,
            height: 112.0,
        };
        let mut raw = vec![0f32; 136];
        raw[0] = 0.25; // x = 28 px in the padded input = left edge of the crop
        raw[1] = 0.5;
        let pts = landmarks_to_image(&raw, crop, &bbox);
        assert!((pts[0][0] - 10.5).abs() < 1e-6 && (pts[0][1] - 76.25).abs() < 1e-6);
    }
}
