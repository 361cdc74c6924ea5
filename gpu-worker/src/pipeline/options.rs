//! What the pipeline is asked to do: which detector finds the faces (with its own settings),
//! which crop the descriptor net gets, and how many faces one forward pass takes.
//!
//! The default is CenterFace ([`super::centerface`]) with dlib's crop. face-api's SSD stays
//! selectable for stores made with it; the heuristics that made up for its misses (a second
//! pass on padded canvases, the frame check, the landmark check) belong to it alone
//! ([`SsdOptions`]), because CenterFace needs none of them (`perf/RESULTS.md`, 2026-12-05).

use std::{fmt, str::FromStr};

use super::{Alignment, CenterFaceOptions, FaceCheck, FrameCheck};

/// Pipeline settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PipelineOptions {
    /// Which network finds the faces, with its settings.
    pub detector: Detector,
    /// Descriptor crop.
    pub align: Alignment,
    /// Most faces per landmark/descriptor forward pass (bounds memory).
    pub face_chunk: usize,
    /// Each descriptor the mean of the chip's and its mirror image's ([`super::mirror`]).
    pub mirror: bool,
}

impl Default for PipelineOptions {
    /// CenterFace with its defaults, dlib's crop.
    fn default() -> Self {
        Self {
            detector: Detector::CenterFace(CenterFaceOptions::default()),
            align: Alignment::Dlib,
            face_chunk: 32,
            mirror: false,
        }
    }
}

impl PipelineOptions {
    /// face-api's SSD with `ssd`'s settings, everything else the default.
    pub fn ssd(ssd: SsdOptions) -> Self {
        Self {
            detector: Detector::Ssd(ssd),
            ..Self::default()
        }
    }
}

/// The face detector and its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Detector {
    /// CenterFace: one pass over the batch, a finer one for the images with small faces.
    CenterFace(CenterFaceOptions),
    /// face-api's SSD, with the heuristics its [`SsdOptions`] turn on.
    Ssd(SsdOptions),
}

impl Detector {
    /// `kind` with its default settings, keeping at most `max_faces` faces per image.
    pub fn with_max_faces(kind: DetectorKind, max_faces: usize) -> Self {
        match kind {
            DetectorKind::CenterFace => Self::CenterFace(CenterFaceOptions {
                max_faces,
                ..CenterFaceOptions::default()
            }),
            DetectorKind::Ssd => Self::Ssd(SsdOptions {
                max_results: max_faces,
                ..SsdOptions::default()
            }),
        }
    }
}

/// Which detector, by name: `centerface` or `ssd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetectorKind {
    #[default]
    CenterFace,
    Ssd,
}

impl FromStr for DetectorKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "centerface" => Ok(Self::CenterFace),
            "ssd" => Ok(Self::Ssd),
            other => Err(format!(
                "unknown detector {other:?}: expected centerface or ssd"
            )),
        }
    }
}

impl fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CenterFace => "centerface",
            Self::Ssd => "ssd",
        })
    }
}

/// face-api's SSD and the heuristics around it; the defaults are face-api's detector plus
/// the three heuristics, as the worker ran before CenterFace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SsdOptions {
    /// SSD `minConfidence` (strict `>`), face-api default 0.5.
    pub min_confidence: f32,
    /// SSD `maxResults` per image, face-api default 100.
    pub max_results: usize,
    /// NMS IoU threshold, fixed at 0.5 in face-api.
    pub iou_threshold: f64,
    /// Detection once more, on a padded copy, of the images where the first pass found no
    /// face that passed the landmark check; `None` turns it off (face-api's behaviour).
    pub second_pass: Option<SecondPass>,
    /// For images in which no detection pass found a face that passed the landmark check,
    /// centred squares verified by the stability of their landmarks
    /// ([`super::frame_check`]); `None` turns it off.
    pub frame_check: Option<FrameCheck>,
    /// Drops detections whose landmarks do not look like a face's
    /// ([`super::plausible::is_plausible_face`]); `None` keeps every detection (face-api).
    pub face_check: Option<FaceCheck>,
}

impl Default for SsdOptions {
    fn default() -> Self {
        Self {
            min_confidence: 0.5,
            max_results: 100,
            iou_threshold: 0.5,
            second_pass: Some(SecondPass::default()),
            frame_check: Some(FrameCheck::default()),
            face_check: Some(FaceCheck::default()),
        }
    }
}

impl SsdOptions {
    /// face-api's detector as it is: one pass, no landmark check (the golden outputs').
    pub fn face_api() -> Self {
        Self {
            second_pass: None,
            frame_check: None,
            face_check: None,
            ..Self::default()
        }
    }
}

/// The second detection pass: each image the first pass found no face in is centred on
/// black squares of the given sizes and detected again on all of them; overlapping faces
/// found on several are merged by NMS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecondPass {
    /// The canvases, each as (side over the image's longer side, least side in pixels).
    pub canvases: &'static [(f64, u32)],
    /// Score a face must exceed on a canvas (strict `>`).
    pub min_confidence: f32,
}

impl Default for SecondPass {
    fn default() -> Self {
        Self {
            // 2× and 3× put a face that fills the image at a half and a third of the input;
            // the 512 px floor keeps a thumbnail from being blown up (and blurred) to 512.
            canvases: &[(2.0, 0), (3.0, 0), (2.0, 512)],
            min_confidence: 0.5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_names_round_trip_and_unknown_ones_are_refused() {
        for kind in [DetectorKind::CenterFace, DetectorKind::Ssd] {
            assert_eq!(kind.to_string().parse::<DetectorKind>(), Ok(kind));
        }
        assert_eq!(" SSD ".parse::<DetectorKind>(), Ok(DetectorKind::Ssd));
        let err = "mtcnn".parse::<DetectorKind>().expect_err("unknown");
        assert!(err.contains("centerface or ssd"), "{err}");
    }

    #[test]
    fn the_face_cap_reaches_either_detector() {
        match Detector::with_max_faces(DetectorKind::CenterFace, 7) {
            Detector::CenterFace(o) => assert_eq!(o.max_faces, 7),
            other => panic!("{other:?}"),
        }
        match Detector::with_max_faces(DetectorKind::Ssd, 7) {
            Detector::Ssd(o) => {
                assert_eq!(o.max_results, 7);
                assert!(o.second_pass.is_some() && o.face_check.is_some());
            }
            other => panic!("{other:?}"),
        }
    }
}
