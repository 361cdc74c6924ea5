//! Finding the faces of a batch before their descriptors. CenterFace: one call of
//! [`centerface::detect`]. face-api's SSD: its first pass, its second pass on padded canvases
//! for the images with no face yet, and the frame check's centred squares for the images
//! still without one, each when its [`SsdOptions`] turn it on. "No face" means no detection
//! that passed the landmark check ([`super::plausible`]), so an image whose only detection was
//! refused gets the later passes too.

use std::time::Instant;

use image::RgbImage;

use super::{
    Canvas, CenterFaceOptions, CropRect, FacePipeline, FrameCheck, Normalize, Pending, SecondPass,
    SsdOptions, StageTimings, align, batch_input, centerface, detection, frame_check, plausible,
    preprocess,
};
use crate::{
    error::ModelError,
    models::{SsdMobilenetV1, centerface::CenterFace, ssd::SSD_INPUT},
};

impl FacePipeline {
    /// CenterFace on the whole batch: every face it finds, waiting for its landmarks; the
    /// landmark net gets the box the options' [`centerface::BoxMap`] makes of the detector's
    /// (by default that box itself), the face keeps the detector's.
    pub(super) fn centerface_pass(
        &self,
        net: &CenterFace,
        images: &[RgbImage],
        options: &CenterFaceOptions,
    ) -> Result<Vec<Pending>, ModelError> {
        let found = centerface::detect(net, images, options, &self.device)?;
        let landmark_box = options.landmark_box;
        Ok(found
            .into_iter()
            .enumerate()
            .flat_map(|(i, faces)| {
                let (w, h) = images[i].dimensions();
                faces.into_iter().filter_map(move |d| {
                    let bbox = landmark_box.apply(&d.bbox);
                    let crop = detection::clip_box(&bbox, w, h)?;
                    Some(Pending {
                        image: i,
                        score: d.score,
                        bbox,
                        shown: Some(d.bbox),
                        crop,
                        landmarks: [[0.0; 2]; 68],
                    })
                })
            })
            .collect())
    }

    /// The SSD's faces of the batch with their landmarks: the first pass, then the second
    /// pass and the frame check when `o` turns them on, each face kept only when it passes
    /// the landmark check (when that is on). The time goes to `timings`' detect and landmark
    /// stages.
    pub(super) fn ssd_faces(
        &self,
        ssd: &SsdMobilenetV1,
        o: &SsdOptions,
        images: &[RgbImage],
        timings: &mut StageTimings,
    ) -> Result<Vec<Pending>, ModelError> {
        let t = Instant::now();
        let whole: Vec<(usize, Option<Canvas>)> = (0..images.len()).map(|i| (i, None)).collect();
        let mut pending = self.detect_pass(ssd, o, images, &whole, o.min_confidence)?;
        timings.detect += t.elapsed();
        let t = Instant::now();
        self.keep_faces(o, images, &mut pending)?;
        timings.landmarks += t.elapsed();

        if let Some(pass) = &o.second_pass {
            let t = Instant::now();
            let mut found = self.second_pass(ssd, o, images, &pending, pass)?;
            timings.detect += t.elapsed();
            let t = Instant::now();
            self.keep_faces(o, images, &mut found)?;
            pending.extend(found);
            timings.landmarks += t.elapsed();
        }

        if let Some(frame) = &o.frame_check {
            let t = Instant::now();
            let mut proposals = frame_proposals(images, &pending, frame);
            self.locate_all_landmarks(images, &mut proposals)?;
            let mut found = self.check_proposals(images, &proposals, frame)?;
            retain_plausible(o, &mut found);
            pending.extend(found);
            timings.landmarks += t.elapsed();
        }
        Ok(pending)
    }

    /// Locates the landmarks of `faces` and keeps those that pass the landmark check.
    fn keep_faces(
        &self,
        o: &SsdOptions,
        images: &[RgbImage],
        faces: &mut Vec<Pending>,
    ) -> Result<(), ModelError> {
        self.locate_all_landmarks(images, faces)?;
        retain_plausible(o, faces);
        Ok(())
    }

    /// SSD once more on each image without a face in `found`, centred on larger black
    /// canvases ([`SsdOptions::second_pass`]), all such copies of the batch in one
    /// forward pass. face-api's SSD misses faces that fill the frame (tight crops,
    /// thumbnails): on a canvas they shrink to a size its anchors cover. `found` holds the
    /// faces that passed the landmark check, so an image whose first pass found only
    /// something that is not a face gets this pass too.
    fn second_pass(
        &self,
        ssd: &SsdMobilenetV1,
        o: &SsdOptions,
        images: &[RgbImage],
        found: &[Pending],
        pass: &SecondPass,
    ) -> Result<Vec<Pending>, ModelError> {
        let copies: Vec<(usize, Option<Canvas>)> = without_face(images, found)
            .flat_map(|i| {
                let (w, h) = images[i].dimensions();
                pass.canvases.iter().map(move |&(factor, min_side)| {
                    (i, Some(Canvas::centred(w, h, factor, min_side)))
                })
            })
            .collect();
        if copies.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen = self.detect_pass(ssd, o, images, &copies, pass.min_confidence)?;
        // One face seen on several canvases: keep the best-scored box (face-api's order).
        seen.sort_by(|a, b| a.image.cmp(&b.image).then(b.score.total_cmp(&a.score)));
        let mut kept: Vec<Pending> = Vec::new();
        for p in seen {
            let overlaps = kept
                .iter()
                .any(|k| k.image == p.image && k.bbox.iou(&p.bbox) > o.iou_threshold);
            if !overlaps {
                kept.push(p);
            }
        }
        Ok(kept)
    }

    /// One SSD forward pass over the given images (whole, or centred on a canvas), then
    /// decoding and NMS per copy.
    fn detect_pass(
        &self,
        ssd: &SsdMobilenetV1,
        o: &SsdOptions,
        images: &[RgbImage],
        copies: &[(usize, Option<Canvas>)],
        min_confidence: f32,
    ) -> Result<Vec<Pending>, ModelError> {
        let x = batch_input(copies.len(), SSD_INPUT, &self.device, |k, out| {
            let (i, canvas) = copies[k];
            let img = &images[i];
            let full = CropRect::full(img);
            match canvas {
                None => {
                    preprocess::pad_resize_into(img, full, false, SSD_INPUT, Normalize::Ssd, out)
                }
                Some(c) => {
                    preprocess::canvas_resize_into(img, full, c, SSD_INPUT, Normalize::Ssd, out)
                }
            }
        })?;
        let out = ssd.forward(&x)?;
        let enc = out.box_encodings.flatten_all()?.to_vec1::<f32>()?;
        let scores = out.scores.flatten_all()?.to_vec1::<f32>()?;
        let anchors = ssd.anchors();
        let n = anchors.len();
        let mut pending = Vec::new();
        for (k, &(i, canvas)) in copies.iter().enumerate() {
            let img = &images[i];
            if img.width() == 0 || img.height() == 0 {
                continue;
            }
            let s = &scores[k * n..(k + 1) * n];
            let e = &enc[k * n * 4..(k + 1) * n * 4];
            let boxes: Vec<[f32; 4]> = anchors
                .iter()
                .zip(e.chunks_exact(4))
                .map(|(a, c)| detection::decode_box([c[0], c[1], c[2], c[3]], *a))
                .collect();
            for j in detection::nms(s, &boxes, min_confidence, o.max_results, o.iou_threshold) {
                let bbox = match canvas {
                    None => detection::to_image_box(boxes[j], img.width(), img.height(), SSD_INPUT),
                    Some(c) => {
                        detection::canvas_box_to_image(boxes[j], c, img.width(), img.height())
                    }
                };
                // A box wholly outside the image (only possible in the padding) has no pixels.
                if let Some(crop) = detection::clip_box(&bbox, img.width(), img.height()) {
                    pending.push(Pending {
                        image: i,
                        score: s[j],
                        bbox,
                        shown: None,
                        crop,
                        landmarks: [[0.0; 2]; 68],
                    });
                }
            }
        }
        Ok(pending)
    }

    /// The frame check's second landmark run: each proposal (its first landmarks located)
    /// moves to the box its landmarks imply and gets the landmarks found there; it stays only
    /// when that box is not flat and the landmarks drifted less than `frame.max_drift`, and
    /// one image keeps its steadiest proposal.
    fn check_proposals(
        &self,
        images: &[RgbImage],
        proposals: &[Pending],
        frame: &FrameCheck,
    ) -> Result<Vec<Pending>, ModelError> {
        // Each proposal that moves to a usable, non-flat box, with its first landmarks kept
        // beside it (dropped proposals must not shift the pairs).
        let (firsts, mut moved): (Vec<align::Landmarks>, Vec<Pending>) = proposals
            .iter()
            .filter_map(|p| {
                let img = &images[p.image];
                let bbox = frame_check::box_from_landmarks(&p.landmarks);
                let crop = detection::clip_box(&bbox, img.width(), img.height())?;
                (frame_check::contrast(img, crop) >= frame.min_contrast)
                    .then_some((p.landmarks, Pending { bbox, crop, ..*p }))
            })
            .unzip();
        self.locate_all_landmarks(images, &mut moved)?;
        let mut steadiest: Vec<(f64, Pending)> = Vec::new();
        for (first, p) in firsts.iter().zip(moved) {
            let drift = frame_check::drift(first, &p.landmarks);
            // A NaN drift (degenerate landmarks) is refused too.
            if drift.is_nan() || drift >= frame.max_drift {
                continue;
            }
            match steadiest.iter_mut().find(|(_, s)| s.image == p.image) {
                Some(best) if best.0 <= drift => {}
                Some(best) => *best = (drift, p),
                None => steadiest.push((drift, p)),
            }
        }
        // No detector scored these faces; the score says how steady the landmarks were.
        Ok(steadiest
            .into_iter()
            .map(|(drift, p)| Pending {
                score: (1.0 - drift) as f32,
                ..p
            })
            .collect())
    }
}

/// The images of the batch, non-empty, with no face in `found`.
fn without_face<'a>(
    images: &'a [RgbImage],
    found: &'a [Pending],
) -> impl Iterator<Item = usize> + 'a {
    (0..images.len())
        .filter(|&i| images[i].width() > 0 && images[i].height() > 0)
        .filter(move |&i| !found.iter().any(|p| p.image == i))
}

/// Drops the detections whose landmarks do not look like a face's (when `o`'s check is on).
fn retain_plausible(o: &SsdOptions, faces: &mut Vec<Pending>) {
    if let Some(check) = &o.face_check {
        faces.retain(|p| plausible::is_plausible_face(&p.landmarks, &p.bbox, check));
    }
}

/// The frame check's centred squares for every image without a face in `found`.
fn frame_proposals(images: &[RgbImage], found: &[Pending], frame: &FrameCheck) -> Vec<Pending> {
    without_face(images, found)
        .flat_map(|i| {
            let (w, h) = images[i].dimensions();
            frame_check::proposals(w, h, frame.fractions)
                .into_iter()
                .filter_map(move |bbox| {
                    let crop = detection::clip_box(&bbox, w, h)?;
                    Some(Pending {
                        image: i,
                        score: 0.0,
                        bbox,
                        shown: None,
                        crop,
                        landmarks: [[0.0; 2]; 68],
                    })
                })
        })
        .collect()
}
