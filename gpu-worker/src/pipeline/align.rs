//! Landmark decoding and the choice between the two crops for the descriptor net:
//! - [`Alignment::Dlib`] (default): dlib's `get_face_chip(shape, 150, 0.25)`, the chip the
//!   recognition network was trained on and whose threshold (0.6) is dlib's; see
//!   [`super::dlib_chip`].
//! - [`Alignment::FaceApi`]: face-api's axis-aligned square around the eyes and mouth
//!   (`landmarks.align(null, {useDlibAlignment: true})`); reproduces face-api's descriptors.

use std::{fmt, str::FromStr};

use super::{
    detection::{BBox, clip_box},
    preprocess::CropRect,
};

/// How the descriptor crop is chosen. Descriptors made with one are not comparable with the
/// other's, so a store holds faces of one alignment only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alignment {
    /// face-api's square crop, no rotation; reproduces face-api's golden descriptors.
    FaceApi,
    /// dlib's similarity-transform face chip (150 px, padding 0.25).
    #[default]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alignment() {
        assert_eq!("faceapi".parse::<Alignment>(), Ok(Alignment::FaceApi));
        assert_eq!("DLIB".parse::<Alignment>(), Ok(Alignment::Dlib));
        assert!("x".parse::<Alignment>().is_err());
        assert_eq!(Alignment::default().to_string(), "dlib");
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
