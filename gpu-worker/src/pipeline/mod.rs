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
mod mirror;
mod options;
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
    options::{Detector, DetectorKind, PipelineOptions, SecondPass, SsdOptions},
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
    /// Scaling, the detector network, box decoding and suppression for the batch.
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

/// The detector network [`PipelineOptions::detector`] chose (only that one is loaded).
#[derive(Debug)]
enum FaceDetector {
    Ssd(SsdMobilenetV1, SsdOptions),
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
    /// The box the landmark net's crop and its landmarks' mapping are made from.
    bbox: BBox,
    /// The box the face is given with, when not `bbox` (the detector's own).
    shown: Option<BBox>,
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
            Detector::Ssd(ssd) => FaceDetector::Ssd(
                SsdMobilenetV1::load(load(DETECTOR_FILE)?).map_err(layout(DETECTOR_FILE))?,
                ssd,
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
            FaceDetector::Ssd(ssd, _) => Some(ssd),
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
        let pending = match &self.detector {
            FaceDetector::Ssd(ssd, options) => {
                self.ssd_faces(ssd, options, images, &mut timings)?
            }
            FaceDetector::CenterFace(net, options) => {
                // No later pass and no landmark check: CenterFace needs none of them.
                let t = Instant::now();
                let mut found = self.centerface_pass(net, images, options)?;
                timings.detect += t.elapsed();
                let t = Instant::now();
                self.locate_all_landmarks(images, &mut found)?;
                timings.landmarks += t.elapsed();
                found
            }
        };

        for chunk in pending.chunks(self.options.face_chunk.max(1)) {
            let descriptors = self.describe(images, chunk, &mut timings)?;
            for (p, descriptor) in chunk.iter().zip(descriptors) {
                let b = p.shown.as_ref().unwrap_or(&p.bbox);
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
            let n = valid.len();
            if self.options.mirror {
                mirror::with_flipped(&mut buf, size);
            }
            let inputs = buf.len() / per;
            let x = Tensor::from_vec(buf, (inputs, size, size, 3), &self.device)?;
            let d = self.recognition.forward(&x)?.to_vec2::<f32>()?;
            for (k, &i) in valid.iter().enumerate() {
                out[i] = if self.options.mirror {
                    mirror::average(&d[k], &d[n + k])
                } else {
                    let mut row = [0f32; DESCRIPTOR_LEN];
                    row.copy_from_slice(&d[k]);
                    row
                };
            }
        }
        timings.describe += t.elapsed();
        Ok(out)
    }
}
