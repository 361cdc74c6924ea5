//! The batched face pipeline: detect → landmarks → align → describe.
//!
//! [`FacePipeline::run`] takes N decoded images and returns, per image, every face with its
//! score, box, 68 landmarks (image pixels) and 128-d descriptor. The detector runs the whole
//! batch as one tensor; the landmark and descriptor nets run on all faces of the batch at once
//! (in chunks of [`PipelineOptions::face_chunk`] to bound memory). Per-stage wall times are
//! returned by [`FacePipeline::run_timed`] for benchmarks and metrics.
//!
//! This module knows nothing of queues or storage: decoding is the caller's job
//! ([`crate::decode::decode_image`]).

pub mod align;
pub mod centerface;
pub mod detection;
pub mod dlib_chip;
pub mod frame_check;
mod passes;
pub mod plausible;
pub mod preprocess;
pub mod similarity;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use candle_core::{Device, Module, Tensor};
use image::RgbImage;
use rayon::prelude::*;

pub use self::{
    align::Alignment,
    centerface::CenterFaceOptions,
    detection::BBox,
    frame_check::FrameCheck,
    plausible::FaceCheck,
    preprocess::{Canvas, CropRect, Normalize},
};
use crate::{
    error::ModelError,
    models::{
        FaceLandmark68Net, FaceRecognitionNet, SsdMobilenetV1,
        centerface::CenterFace,
        landmarks::LANDMARK_INPUT,
        recognition::{DESCRIPTOR_LEN, RECOGNITION_INPUT},
    },
    weights::{self, CENTERFACE_FILE, DETECTOR_FILE, LANDMARKS_FILE, RECOGNITION_FILE},
};

/// One detected face.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    /// Detector confidence, `> min_confidence`.
    pub score: f32,
    /// `[x, y, width, height]` in image pixels (may extend past the image border).
    pub bbox: [f32; 4],
    /// 68 points (iBUG 300-W order) in image pixels.
    pub landmarks: [[f32; 2]; 68],
    /// 128-d descriptor, not normalised; compare with Euclidean distance (threshold 0.6).
    /// All zeros when the descriptor crop was empty (face-api behaviour).
    pub descriptor: [f32; DESCRIPTOR_LEN],
}

/// Wall time spent in each stage of one [`FacePipeline::run_timed`] call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimings {
    /// Pad/resize, SSD, box decoding and NMS for the batch.
    pub detect: Duration,
    /// Landmark crops, landmark net and decoding for every face.
    pub landmarks: Duration,
    /// Descriptor crops (face-api square or dlib chip) for every face.
    pub align: Duration,
    /// Recognition net for every face.
    pub describe: Duration,
}

impl std::ops::AddAssign for StageTimings {
    fn add_assign(&mut self, o: Self) {
        self.detect += o.detect;
        self.landmarks += o.landmarks;
        self.align += o.align;
        self.describe += o.describe;
    }
}

/// Pipeline settings; the detector's defaults are face-api's, plus a second detection pass
/// for faces that fill the frame, and dlib's descriptor crop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PipelineOptions {
    /// Which network finds the faces.
    pub detector: Detector,
    /// Descriptor crop.
    pub align: Alignment,
    /// SSD `minConfidence` (strict `>`), face-api default 0.5.
    pub min_confidence: f32,
    /// SSD `maxResults` per image, face-api default 100.
    pub max_results: usize,
    /// NMS IoU threshold, fixed at 0.5 in face-api.
    pub iou_threshold: f64,
    /// Most faces per landmark/descriptor forward pass (bounds memory).
    pub face_chunk: usize,
    /// Detection once more, on a padded copy, of the images where the first pass found no
    /// face that passed the landmark check; `None` turns it off (face-api's behaviour).
    pub second_pass: Option<SecondPass>,
    /// For images in which no detection pass found a face that passed the landmark check,
    /// centred squares verified by the stability of their landmarks ([`frame_check`]); `None`
    /// turns it off.
    pub frame_check: Option<FrameCheck>,
    /// Drops detections whose landmarks do not look like a face's
    /// ([`plausible::is_plausible_face`]); `None` keeps every detection (face-api).
    pub face_check: Option<FaceCheck>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            detector: Detector::Ssd,
            align: Alignment::Dlib,
            min_confidence: 0.5,
            max_results: 100,
            iou_threshold: 0.5,
            face_chunk: 32,
            second_pass: Some(SecondPass::default()),
            frame_check: Some(FrameCheck::default()),
            face_check: Some(FaceCheck::default()),
        }
    }
}

/// The face detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Detector {
    /// face-api's SSD with its second pass and frame check (when those are on).
    Ssd,
    /// CenterFace ([`centerface`]) alone: one pass over the batch, no second pass or frame
    /// check.
    CenterFace(CenterFaceOptions),
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

/// The detector network [`PipelineOptions::detector`] chose (only that one is loaded).
#[derive(Debug)]
enum FaceDetector {
    Ssd(SsdMobilenetV1),
    CenterFace(CenterFace, CenterFaceOptions),
}

/// The networks on one device.
#[derive(Debug)]
pub struct FacePipeline {
    detector: FaceDetector,
    landmarks: FaceLandmark68Net,
    recognition: FaceRecognitionNet,
    device: Device,
    options: PipelineOptions,
}

/// A detection waiting for its landmarks and descriptor.
#[derive(Clone, Copy)]
struct Pending {
    image: usize,
    score: f32,
    bbox: BBox,
    crop: CropRect,
    landmarks: align::Landmarks,
}

/// Fills an `[n, size, size, 3]` buffer in parallel, one item per chunk.
fn batch_input(
    n: usize,
    size: usize,
    device: &Device,
    fill: impl Fn(usize, &mut [f32]) + Sync,
) -> candle_core::Result<Tensor> {
    let per = size * size * 3;
    let mut buf = vec![0f32; n * per];
    buf.par_chunks_mut(per)
        .enumerate()
        .for_each(|(i, chunk)| fill(i, chunk));
    Tensor::from_vec(buf, (n, size, size, 3), device)
}

impl FacePipeline {
    /// Loads the three networks from `weights_dir` (sha256-verified against the pinned
    /// manifest) onto `device`. On the CPU this also tunes the process allocator for layer
    /// outputs ([`crate::memory::reuse_freed_memory`]).
    pub fn load(
        weights_dir: &Path,
        device: &Device,
        options: PipelineOptions,
    ) -> Result<Self, ModelError> {
        if device.is_cpu() {
            crate::memory::reuse_freed_memory();
        }
        let load = |file: &'static str| weights::load_pinned(weights_dir, file, device);
        let layout = |file: &'static str| {
            move |source| ModelError::Layout {
                path: weights_dir.join(file),
                source,
            }
        };
        let detector = match options.detector {
            Detector::Ssd => FaceDetector::Ssd(
                SsdMobilenetV1::load(load(DETECTOR_FILE)?).map_err(layout(DETECTOR_FILE))?,
            ),
            Detector::CenterFace(centerface) => FaceDetector::CenterFace(
                CenterFace::load(load(CENTERFACE_FILE)?).map_err(layout(CENTERFACE_FILE))?,
                centerface,
            ),
        };
        let landmarks =
            FaceLandmark68Net::load(load(LANDMARKS_FILE)?).map_err(layout(LANDMARKS_FILE))?;
        let recognition =
            FaceRecognitionNet::load(load(RECOGNITION_FILE)?).map_err(layout(RECOGNITION_FILE))?;
        Ok(Self {
            detector,
            landmarks,
            recognition,
            device: device.clone(),
            options,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The networks, for per-network checks.
    /// The SSD is `None` when the pipeline detects with CenterFace.
    pub fn networks(
        &self,
    ) -> (
        Option<&SsdMobilenetV1>,
        &FaceLandmark68Net,
        &FaceRecognitionNet,
    ) {
        let ssd = match &self.detector {
            FaceDetector::Ssd(ssd) => Some(ssd),
            FaceDetector::CenterFace(..) => None,
        };
        (ssd, &self.landmarks, &self.recognition)
    }

    /// Every face of every image, in face-api's order (descending score).
    pub fn run(&self, images: &[RgbImage]) -> Result<Vec<Vec<Face>>, ModelError> {
        Ok(self.run_timed(images)?.0)
    }

    /// [`Self::run`] plus the wall time of each stage.
    pub fn run_timed(
        &self,
        images: &[RgbImage],
    ) -> Result<(Vec<Vec<Face>>, StageTimings), ModelError> {
        let mut timings = StageTimings::default();
        let mut result: Vec<Vec<Face>> = vec![Vec::new(); images.len()];
        if images.is_empty() {
            return Ok((result, timings));
        }
        let t = Instant::now();
        // The SSD's later passes run only behind the SSD.
        let (mut pending, ssd) = match &self.detector {
            FaceDetector::Ssd(ssd) => (self.first_pass(ssd, images)?, Some(ssd)),
            FaceDetector::CenterFace(net, options) => {
                (self.centerface_pass(net, images, options)?, None)
            }
        };
        timings.detect += t.elapsed();
        let t = Instant::now();
        self.keep_faces(images, &mut pending)?;
        timings.landmarks += t.elapsed();

        if let (Some(ssd), Some(pass)) = (ssd, &self.options.second_pass) {
            let t = Instant::now();
            let mut found = self.second_pass(ssd, images, &pending, pass)?;
            timings.detect += t.elapsed();
            let t = Instant::now();
            self.keep_faces(images, &mut found)?;
            pending.extend(found);
            timings.landmarks += t.elapsed();
        }

        if let Some(frame) = self.options.frame_check.as_ref().filter(|_| ssd.is_some()) {
            let t = Instant::now();
            let mut proposals = passes::frame_proposals(images, &pending, frame);
            self.locate_all_landmarks(images, &mut proposals)?;
            let mut found = self.check_proposals(images, &proposals, frame)?;
            self.retain_plausible(&mut found);
            pending.extend(found);
            timings.landmarks += t.elapsed();
        }

        for chunk in pending.chunks(self.options.face_chunk.max(1)) {
            let descriptors = self.describe(images, chunk, &mut timings)?;
            for (p, descriptor) in chunk.iter().zip(descriptors) {
                let b = &p.bbox;
                result[p.image].push(Face {
                    score: p.score,
                    bbox: [b.x as f32, b.y as f32, b.width as f32, b.height as f32],
                    landmarks: p.landmarks.map(|q| [q[0] as f32, q[1] as f32]),
                    descriptor,
                });
            }
        }
        Ok((result, timings))
    }

    /// Locates the landmarks of `faces` and keeps those that pass the landmark check.
    fn keep_faces(&self, images: &[RgbImage], faces: &mut Vec<Pending>) -> Result<(), ModelError> {
        self.locate_all_landmarks(images, faces)?;
        self.retain_plausible(faces);
        Ok(())
    }

    /// Drops the detections whose landmarks do not look like a face's (when the check is on).
    fn retain_plausible(&self, faces: &mut Vec<Pending>) {
        if let Some(check) = &self.options.face_check {
            faces.retain(|p| plausible::is_plausible_face(&p.landmarks, &p.bbox, check));
        }
    }

    /// [`Self::locate_landmarks`] in chunks of [`PipelineOptions::face_chunk`].
    fn locate_all_landmarks(
        &self,
        images: &[RgbImage],
        faces: &mut [Pending],
    ) -> Result<(), ModelError> {
        for chunk in faces.chunks_mut(self.options.face_chunk.max(1)) {
            self.locate_landmarks(images, chunk)?;
        }
        Ok(())
    }

    /// Landmark net on a chunk of faces.
    fn locate_landmarks(
        &self,
        images: &[RgbImage],
        faces: &mut [Pending],
    ) -> Result<(), ModelError> {
        if faces.is_empty() {
            return Ok(());
        }
        let x = batch_input(faces.len(), LANDMARK_INPUT, &self.device, |i, out| {
            let f = &faces[i];
            preprocess::pad_resize_into(
                &images[f.image],
                f.crop,
                true,
                LANDMARK_INPUT,
                Normalize::MeanRgb,
                out,
            );
        })?;
        let raw = self.landmarks.forward(&x)?.to_vec2::<f32>()?;
        for (f, r) in faces.iter_mut().zip(raw) {
            f.landmarks = align::landmarks_to_image(&r, f.crop, &f.bbox);
        }
        Ok(())
    }

    /// Descriptor crops and recognition net on a chunk of faces.
    fn describe(
        &self,
        images: &[RgbImage],
        faces: &[Pending],
        timings: &mut StageTimings,
    ) -> Result<Vec<[f32; DESCRIPTOR_LEN]>, ModelError> {
        let t = Instant::now();
        let size = RECOGNITION_INPUT;
        let per = size * size * 3;
        // Which faces have a non-empty crop, and their network input.
        let inputs: Vec<Option<Vec<f32>>> = faces
            .par_iter()
            .map(|f| {
                let img = &images[f.image];
                match self.options.align {
                    Alignment::FaceApi => {
                        let crop =
                            align::faceapi_crop(&f.landmarks, f.crop, img.width(), img.height())?;
                        let mut out = vec![0f32; per];
                        preprocess::pad_resize_into(
                            img,
                            crop,
                            true,
                            size,
                            Normalize::MeanRgb,
                            &mut out,
                        );
                        Some(out)
                    }
                    Alignment::Dlib => {
                        let details = dlib_chip::ChipDetails::for_face(&f.landmarks, size, 0.25);
                        let mut chip = dlib_chip::extract_chip(img, &details);
                        for (i, v) in chip.iter_mut().enumerate() {
                            *v = Normalize::MeanRgb.apply(i % 3, *v);
                        }
                        Some(chip)
                    }
                }
            })
            .collect();
        let valid: Vec<usize> = (0..faces.len()).filter(|&i| inputs[i].is_some()).collect();
        let mut buf = Vec::with_capacity(valid.len() * per);
        for v in inputs.into_iter().flatten() {
            buf.extend_from_slice(&v);
        }
        timings.align += t.elapsed();

        let t = Instant::now();
        let mut out = vec![[0f32; DESCRIPTOR_LEN]; faces.len()];
        if !valid.is_empty() {
            let x = Tensor::from_vec(buf, (valid.len(), size, size, 3), &self.device)?;
            let d = self.recognition.forward(&x)?.to_vec2::<f32>()?;
            for (&i, row) in valid.iter().zip(d) {
                for (o, v) in out[i].iter_mut().zip(row) {
                    *o = v;
                }
            }
        }
        timings.describe += t.elapsed();
        Ok(out)
    }
}
