//! Is a detection a face? A check on where the landmark net put its 68 points, which needs no
//! second network. On a face the points spread over most of the detector's box; on an animal,
//! an object or a texture that the detector scored as a face, the landmark net squeezes a
//! face-like shape into a fraction of the box (a cat's face, coins, a coffee cup: the dlib
//! template fitted to the points spans under 0.55 of the box width, real faces 0.73–1.1 on
//! the demo images). A face turned upside down, which the detector does not find, is refused
//! too.

use super::{align::Landmarks, detection::BBox, dlib_chip::dlib_chip_transform};

/// Thresholds of [`is_plausible_face`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceCheck {
    /// Least width of the fitted dlib template (its unpadded square) over the box width.
    pub min_spread: f64,
    /// Largest roll of the fitted template, in degrees either way.
    pub max_roll_degrees: f64,
}

impl Default for FaceCheck {
    fn default() -> Self {
        Self {
            min_spread: 0.6,
            max_roll_degrees: 90.0,
        }
    }
}

/// Whether `landmarks` found in `bbox` look like a face's.
pub fn is_plausible_face(landmarks: &Landmarks, bbox: &BBox, check: &FaceCheck) -> bool {
    if bbox.width <= 0.0 {
        return false;
    }
    // The template's unit square (no padding) onto the landmarks.
    let t = dlib_chip_transform(landmarks, 1, 0.0);
    let spread = t.scale() / bbox.width;
    let roll = t.b.atan2(t.a).to_degrees().abs();
    spread >= check.min_spread && roll <= check.max_roll_degrees
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dlib's mean face `width` px wide centred at (x, y), turned by `degrees`.
    fn face(x: f64, y: f64, width: f64, degrees: f64) -> Landmarks {
        let mut pts = [[0f64; 2]; 68];
        let (s, c) = degrees.to_radians().sin_cos();
        for &(i, mx, my) in &crate::pipeline::dlib_chip::DLIB_TEMPLATE {
            let (u, v) = (mx - 0.5, my - 0.5);
            pts[i] = [x + width * (c * u - s * v), y + width * (s * u + c * v)];
        }
        pts
    }

    #[test]
    fn spread_and_roll_decide() {
        let b = BBox {
            x: 0.0,
            y: 0.0,
            width: 100.0,
            height: 100.0,
        };
        let check = FaceCheck::default();
        assert!(is_plausible_face(&face(50.0, 50.0, 90.0, 10.0), &b, &check));
        // The same shape squeezed into a third of the box.
        assert!(!is_plausible_face(
            &face(50.0, 50.0, 30.0, 10.0),
            &b,
            &check
        ));
        // Upside down.
        assert!(!is_plausible_face(
            &face(50.0, 50.0, 90.0, 150.0),
            &b,
            &check
        ));
        let empty = BBox { width: 0.0, ..b };
        assert!(!is_plausible_face(
            &face(50.0, 50.0, 90.0, 0.0),
            &empty,
            &check
        ));
    }
}
