//! The frame check: faces that fill the frame and that no detector scores, found by asking the
//! landmark net and checking that it answers like it does on a face.
//!
//! A thumbnail, profile picture or dataset crop holds one face near its centre, and both
//! detectors still miss some of them (faces looking down, tilted, grey-scale). For an image in
//! which neither detection pass found anything, centred squares of a few sizes are proposed as
//! face boxes. For each, the landmark net runs once on the proposal, the box a face with those
//! landmarks would have is derived from them (the square around dlib's template fitted to the
//! points), and the net runs again on that box. On a face the landmark net is stable: the
//! second answer lies close to the first (mean drift under a tenth of the face width on the
//! demo crops). On a texture, an animal or an object it guesses a face-like shape anew for
//! each box, and the points move by a quarter of the face width or more (every no-face image
//! of the recall benchmark). Proposals whose drift stays under [`FrameCheck::max_drift`] are
//! kept, with the second box and landmarks; the usual landmark check follows.
//!
//! On a blank region the net answers with the same shape whatever the box, which can be
//! steady too (a black image passed the drift test), so a proposal must also show some
//! contrast: a face is never a flat patch.

use image::RgbImage;

use super::{
    align::Landmarks, detection::BBox, dlib_chip::dlib_chip_transform, preprocess::CropRect,
};

/// Settings of the frame check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameCheck {
    /// Sides of the proposed centred squares, as fractions of the image's shorter side.
    pub fractions: &'static [f64],
    /// Largest mean landmark drift between the two runs, over the fitted template's width.
    pub max_drift: f64,
    /// Least standard deviation of the grey levels (0–255) inside the second box.
    pub min_contrast: f64,
}

impl Default for FrameCheck {
    fn default() -> Self {
        Self {
            fractions: &[1.0, 0.8, 0.6],
            max_drift: 0.2,
            // Well under any face's (skin, eyes, hair and background), above a flat patch.
            min_contrast: 8.0,
        }
    }
}

/// Width of the fitted template over the side of the box derived from it: the detector's
/// boxes are a little wider than the template (0.74–1.10 on the demo faces).
const TEMPLATE_OVER_BOX: f64 = 0.9;

/// Centred squares of `fractions` of the shorter side of a `w`×`h` image.
pub fn proposals(w: u32, h: u32, fractions: &[f64]) -> Vec<BBox> {
    let (w, h) = (f64::from(w), f64::from(h));
    fractions
        .iter()
        .map(|&f| {
            let side = w.min(h) * f;
            BBox {
                x: (w - side) / 2.0,
                y: (h - side) / 2.0,
                width: side,
                height: side,
            }
        })
        .collect()
}

/// The square box a detector would give a face with these landmarks.
pub fn box_from_landmarks(landmarks: &Landmarks) -> BBox {
    let t = dlib_chip_transform(landmarks, 1, 0.0);
    let [cx, cy] = t.apply([0.5, 0.5]);
    let side = t.scale() / TEMPLATE_OVER_BOX;
    BBox {
        x: cx - side / 2.0,
        y: cy - side / 2.0,
        width: side,
        height: side,
    }
}

/// Standard deviation of the grey levels of `crop` of `img`, on at most about 64×64 samples.
pub fn contrast(img: &RgbImage, crop: CropRect) -> f64 {
    let step = (crop.width.max(crop.height) / 64).max(1) as usize;
    let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
    for y in (crop.y..crop.y + crop.height).step_by(step) {
        for x in (crop.x..crop.x + crop.width).step_by(step) {
            let Some(p) = img.get_pixel_checked(x, y) else {
                continue;
            };
            let [r, g, b] = p.0.map(f64::from);
            let v = 0.299 * r + 0.587 * g + 0.114 * b;
            n += 1.0;
            sum += v;
            sq += v * v;
        }
    }
    if n == 0.0 {
        return 0.0;
    }
    let mean = sum / n;
    (sq / n - mean * mean).max(0.0).sqrt()
}

/// Mean distance between corresponding points of two landmark sets, over the width of the
/// template fitted to the first.
pub fn drift(first: &Landmarks, second: &Landmarks) -> f64 {
    let scale = dlib_chip_transform(first, 1, 0.0).scale();
    if scale <= 0.0 {
        return f64::INFINITY;
    }
    let total: f64 = first
        .iter()
        .zip(second)
        .map(|(a, b)| (a[0] - b[0]).hypot(a[1] - b[1]))
        .sum();
    total / first.len() as f64 / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dlib's mean face `width` px wide centred at (x, y).
    fn face(x: f64, y: f64, width: f64) -> Landmarks {
        let mut pts = [[0f64; 2]; 68];
        for &(i, mx, my) in &crate::pipeline::dlib_chip::DLIB_TEMPLATE {
            pts[i] = [x + width * (mx - 0.5), y + width * (my - 0.5)];
        }
        pts
    }

    #[test]
    fn contrast_is_zero_on_a_flat_patch() {
        let flat = RgbImage::from_pixel(20, 20, image::Rgb([0, 0, 0]));
        let all = CropRect {
            x: 0,
            y: 0,
            width: 20,
            height: 20,
        };
        assert_eq!(contrast(&flat, all), 0.0);
        let halves =
            RgbImage::from_fn(20, 20, |x, _| image::Rgb([if x < 10 { 0 } else { 200 }; 3]));
        assert!((contrast(&halves, all) - 100.0).abs() < 1e-6);
    }

    #[test]
    fn proposals_are_centred_squares() {
        let p = proposals(200, 100, &[1.0, 0.5]);
        assert_eq!(
            (p[0].x, p[0].y, p[0].width, p[0].height),
            (50.0, 0.0, 100.0, 100.0)
        );
        assert_eq!((p[1].x, p[1].y, p[1].width), (75.0, 25.0, 50.0));
    }

    #[test]
    fn box_and_drift_follow_the_landmarks() {
        let a = face(100.0, 80.0, 90.0);
        let b = box_from_landmarks(&a);
        assert!((b.width - 100.0).abs() < 1e-6, "{b:?}");
        assert!((b.x + b.width / 2.0 - 100.0).abs() < 1e-6, "{b:?}");
        assert_eq!(drift(&a, &a), 0.0);
        // Every point 9 px away on a 90 px face: a drift of 0.1.
        let moved = a.map(|p| [p[0] + 9.0, p[1]]);
        assert!((drift(&a, &moved) - 0.1).abs() < 1e-9);
    }
}
