//! Face detection with [`CenterFace`] over a batch: the images scaled and packed into one
//! input, one forward pass, and each image's faces decoded from the output maps.
//!
//! **Input.** Each image is shrunk (never enlarged) so that its longer side is at most
//! [`CenterFaceOptions::max_side`], by averaging blocks of a whole number of pixels
//! ([`reduce`]), and put at the top left of a black canvas of its own size rounded up to a
//! multiple of 32. The images of a batch with the same canvas size run as one input, one
//! forward pass per size: a canvas shared with a larger image would change the activations
//! near this one's edges, and so its faces with its batch (`pass`).
//!
//! **Two passes.** The network's cost grows with its input's pixels, and the smallest face it
//! finds is about 10–20 input pixels: a fixed large input would make every photo pay for the
//! rare crowd, a fixed small one would lose crowds (a 20×20 grid of 100 px faces: 182 of 400
//! at 640 px, 393 at 1024, 399 at full size; `perf/RESULTS.md`). So the coarse pass runs the
//! whole batch at [`CenterFaceOptions::max_side`] (640), and the images in which it saw a
//! face smaller than 40 px, or none though it shrank the image more than twice, run again at
//! up to 2048 px ([`DetailPass`]).
//!
//! **Decoding** (as the reference implementation, deface's `CenterFace.decode`): every output
//! cell whose heatmap exceeds the threshold is a candidate centred at
//! `4·(cell + offset + 0.5)`, of size `4·exp(size)`; its top-left corner is clamped to the
//! canvas, then the box keeps its size (clipped at the canvas's far edges). The five
//! landmarks are fractions of the box from that corner. Candidates are suppressed greedily by
//! score at IoU ≥ [`CenterFaceOptions::nms_iou`], and each image keeps its
//! [`CenterFaceOptions::max_faces`] best. Boxes are then mapped back to image pixels.

use std::borrow::Cow;

use candle_core::{Device, Module, Tensor};
use image::RgbImage;
use rayon::prelude::*;

use super::detection::BBox;
use crate::{
    error::ModelError,
    models::centerface::{CenterFace, HEAD_CHANNELS, INPUT_MULTIPLE, OUTPUT_STRIDE},
};

/// Detector settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CenterFaceOptions {
    /// Longest side, in pixels, an image is shrunk to for the coarse pass.
    pub max_side: u32,
    /// Heatmap value a face's centre must exceed (strict `>`).
    pub threshold: f32,
    /// Candidates overlapping a better one at this IoU or more are dropped.
    pub nms_iou: f64,
    /// Most faces kept per image.
    pub max_faces: usize,
    /// A second, finer pass for the images whose faces the coarse pass saw small; `None`:
    /// the coarse pass alone.
    pub detail: Option<DetailPass>,
    /// The box the pipeline gives the landmark net for a CenterFace box ([`BoxMap`]).
    pub landmark_box: BoxMap,
}

/// The box the landmark net's crop is cut from, for a CenterFace box: the centre moves by
/// `(dx, dy)` box widths and heights, the sides scale by `(sw, sh)`.
///
/// The 68-point net was made for face-api's SSD boxes, which are a little narrower and sit a
/// little higher. [`BoxMap::SSD`] maps to them: fitted on the held-out photos
/// (`perf/recall/make-held-out.sh`, no demo image; 10 faces both detectors find) as the
/// medians of each face's ratios (`perf/src/bin/landmark-box.rs`). On the demo images it brings
/// the landmarks closer to face-api's golden ones (median 1.7 % of the face's width against
/// 1.9 %), but the descriptors made from them separate people less well (crop set d' 5.3
/// against 7.6, held-out 8.4 against 9.1; `perf/RESULTS.md`), so the default is
/// [`BoxMap::IDENTITY`], CenterFace's own box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxMap {
    pub dx: f64,
    pub dy: f64,
    pub sw: f64,
    pub sh: f64,
}

impl BoxMap {
    /// To face-api's SSD boxes (medians dx −0.005, dy −0.041, sw 0.951, sh 1.027; the
    /// horizontal shift of a symmetric face is taken as 0).
    pub const SSD: Self = Self {
        dx: 0.0,
        dy: -0.04,
        sw: 0.95,
        sh: 1.03,
    };

    /// The box as CenterFace gives it.
    pub const IDENTITY: Self = Self {
        dx: 0.0,
        dy: 0.0,
        sw: 1.0,
        sh: 1.0,
    };

    pub fn apply(&self, b: &BBox) -> BBox {
        let (w, h) = (b.width * self.sw, b.height * self.sh);
        let cx = b.x + b.width * (0.5 + self.dx);
        let cy = b.y + b.height * (0.5 + self.dy);
        BBox {
            x: cx - w / 2.0,
            y: cy - h / 2.0,
            width: w,
            height: h,
        }
    }

    /// The map that takes `from` to `to`, for one face.
    pub fn between(from: &BBox, to: &BBox) -> Self {
        let centre = |b: &BBox| (b.x + b.width / 2.0, b.y + b.height / 2.0);
        let ((fx, fy), (tx, ty)) = (centre(from), centre(to));
        Self {
            dx: (tx - fx) / from.width,
            dy: (ty - fy) / from.height,
            sw: to.width / from.width,
            sh: to.height / from.height,
        }
    }
}

/// The detail pass: an image the coarse pass shrank, and in which it found a face smaller
/// than [`DetailPass::below`] pixels on its shorter side (a crowd, a group far away), or no
/// face at all though it shrank the image more than [`DetailPass::faceless_shrink`] times,
/// is detected again at up to [`DetailPass::max_side`]. Usual photos, whose faces the coarse
/// pass sees large, never take it, so its cost falls on crowds alone. Its forward passes take
/// at most [`DetailPass::batch_pixels`] of canvas each (at least one image), which bounds the
/// memory of the network's large early layers whatever the batch size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetailPass {
    pub max_side: u32,
    pub below: f64,
    pub faceless_shrink: f64,
    pub batch_pixels: usize,
}

impl Default for DetailPass {
    fn default() -> Self {
        Self {
            max_side: 2048,
            below: 40.0,
            faceless_shrink: 2.0,
            batch_pixels: 2048 * 2048,
        }
    }
}

impl Default for CenterFaceOptions {
    fn default() -> Self {
        Self {
            max_side: 640,
            threshold: 0.5,
            nms_iou: 0.3,
            max_faces: 1000,
            detail: Some(DetailPass::default()),
            landmark_box: BoxMap::IDENTITY,
        }
    }
}

/// One face as the detector sees it, in image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub score: f32,
    pub bbox: BBox,
    /// Left eye, right eye, nose, left and right mouth corner (as seen in the image).
    pub landmarks: [[f64; 2]; 5],
}

/// An image scaled for the detector (borrowed when it needed no shrinking).
struct Scaled<'a> {
    pixels: Cow<'a, RgbImage>,
    /// Image pixels per canvas pixel, on each axis.
    back: (f64, f64),
}

/// The smallest whole factor that brings `img`'s longer side to `max_side` or less.
fn shrink_factor(img: &RgbImage, max_side: u32) -> u32 {
    let long = img.width().max(img.height()).max(1);
    long.div_ceil(max_side.max(1)).max(1)
}

/// `img` shrunk by [`shrink_factor`] ([`reduce`]); as it is when it already fits.
fn scaled(img: &RgbImage, max_side: u32) -> Scaled<'_> {
    let k = shrink_factor(img, max_side);
    if k == 1 {
        return Scaled {
            pixels: Cow::Borrowed(img),
            back: (1.0, 1.0),
        };
    }
    Scaled {
        pixels: Cow::Owned(reduce(img, k)),
        back: (f64::from(k), f64::from(k)),
    }
}

/// Each `k×k` block of `img` averaged into one pixel (blocks at the right and bottom edges
/// may be smaller), as Pillow's `Image.reduce(k)`: `ceil(w / k) × ceil(h / k)`. A whole
/// factor keeps this one pass of sums, rows in parallel, several times cheaper than a
/// general area-averaging resize of a large photo; the detector needs no exact size.
pub fn reduce(img: &RgbImage, k: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let k = k.max(1);
    let (ow, oh) = (w.div_ceil(k), h.div_ceil(k));
    let (w, k_us, ow_us) = (w as usize, k as usize, ow as usize);
    let src = img.as_raw();
    let mut out = vec![0u8; ow_us * oh as usize * 3];
    out.par_chunks_mut(ow_us * 3).enumerate().for_each_init(
        Vec::new,
        |sums: &mut Vec<u32>, (oy, dst)| {
            sums.clear();
            sums.resize(ow_us * 3, 0);
            let rows = (oy * k_us)..((oy + 1) * k_us).min(h as usize);
            let n_rows = rows.len();
            for y in rows {
                let row = &src[y * w * 3..(y + 1) * w * 3];
                for (x, px) in row.chunks_exact(3).enumerate() {
                    let o = (x / k_us) * 3;
                    sums[o] += u32::from(px[0]);
                    sums[o + 1] += u32::from(px[1]);
                    sums[o + 2] += u32::from(px[2]);
                }
            }
            for (ox, (d, s)) in dst
                .chunks_exact_mut(3)
                .zip(sums.chunks_exact(3))
                .enumerate()
            {
                let cols = (w - ox * k_us).min(k_us);
                let n = (cols * n_rows) as u32;
                for c in 0..3 {
                    d[c] = ((s[c] + n / 2) / n) as u8;
                }
            }
        },
    );
    RgbImage::from_raw(ow, oh, out).expect("ceil(w/k) × ceil(h/k) × 3 bytes")
}

/// `[B, H, W, 3]` with each image at the top left of a black `W×H` canvas, values 0–255.
pub fn canvas_batch(images: &[&RgbImage], device: &Device) -> candle_core::Result<Tensor> {
    let cw = round_up(images.iter().map(|i| i.width()).max().unwrap_or(1));
    let ch = round_up(images.iter().map(|i| i.height()).max().unwrap_or(1));
    let per = cw * ch * 3;
    let mut buf = vec![0f32; images.len() * per];
    buf.par_chunks_mut(per).zip(images).for_each(|(out, img)| {
        let w = img.width() as usize;
        for (y, row) in img.as_raw().chunks_exact(w * 3).enumerate() {
            for (o, &v) in out[y * cw * 3..][..w * 3].iter_mut().zip(row) {
                *o = f32::from(v);
            }
        }
    });
    Tensor::from_vec(buf, (images.len(), ch, cw, 3), device)
}

/// Candidates of one image's output map `[h4, w4, 15]` (rows of `w4` cells) on a `canvas` of
/// `(width, height)`, in canvas pixels, before suppression.
pub fn candidates(map: &[f32], w4: usize, canvas: (f64, f64), threshold: f32) -> Vec<Detection> {
    // sigmoid(v) > t  ⇔  v > ln(t / (1 − t)); the heatmap's own scores are sigmoids.
    let logit = (threshold / (1.0 - threshold)).ln();
    let mut out = Vec::new();
    for (cell, v) in map.chunks_exact(HEAD_CHANNELS).enumerate() {
        if v[0] <= logit {
            continue;
        }
        let score = 1.0 / (1.0 + (-v[0]).exp());
        if score <= threshold {
            continue;
        }
        let (y, x) = ((cell / w4) as f64, (cell % w4) as f64);
        let stride = OUTPUT_STRIDE as f64;
        let (sh, sw) = (
            f64::from(v[1]).exp() * stride,
            f64::from(v[2]).exp() * stride,
        );
        let cy = (y + f64::from(v[3]) + 0.5) * stride;
        let cx = (x + f64::from(v[4]) + 0.5) * stride;
        let x1 = (cx - sw / 2.0).max(0.0).min(canvas.0);
        let y1 = (cy - sh / 2.0).max(0.0).min(canvas.1);
        let x2 = (x1 + sw).min(canvas.0);
        let y2 = (y1 + sh).min(canvas.1);
        let mut landmarks = [[0.0; 2]; 5];
        for (j, p) in landmarks.iter_mut().enumerate() {
            *p = [
                f64::from(v[5 + 2 * j + 1]) * sw + x1,
                f64::from(v[5 + 2 * j]) * sh + y1,
            ];
        }
        out.push(Detection {
            score,
            bbox: BBox {
                x: x1,
                y: y1,
                width: x2 - x1,
                height: y2 - y1,
            },
            landmarks,
        });
    }
    out
}

/// Greedy suppression: by descending score, drops each candidate that overlaps a kept one at
/// `iou` or more; keeps at most `max`.
pub fn suppress(mut found: Vec<Detection>, iou: f64, max: usize) -> Vec<Detection> {
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in found {
        if kept.len() == max {
            break;
        }
        if kept.iter().all(|k| k.bbox.iou(&d.bbox) < iou) {
            kept.push(d);
        }
    }
    kept
}

/// Every face of every image, best first: the coarse pass on the whole batch, then the
/// detail pass on the images that need it (their faces from it replace the coarse ones).
pub fn detect(
    net: &CenterFace,
    images: &[RgbImage],
    options: &CenterFaceOptions,
    device: &Device,
) -> Result<Vec<Vec<Detection>>, ModelError> {
    let all: Vec<&RgbImage> = images.iter().collect();
    let mut found = pass(net, &all, options.max_side, usize::MAX, options, device)?;
    if let Some(detail) = &options.detail {
        let again: Vec<usize> = (0..images.len())
            .filter(|&i| detail.wanted(&images[i], &found[i], options.max_side))
            .collect();
        let refs: Vec<&RgbImage> = again.iter().map(|&i| &images[i]).collect();
        let fine = pass(
            net,
            &refs,
            detail.max_side,
            detail.batch_pixels,
            options,
            device,
        )?;
        for (i, faces) in again.into_iter().zip(fine) {
            found[i] = faces;
        }
    }
    Ok(found)
}

impl DetailPass {
    /// Whether `img`, in which the coarse pass at `coarse_side` found `faces`, gets the
    /// detail pass.
    fn wanted(&self, img: &RgbImage, faces: &[Detection], coarse_side: u32) -> bool {
        let long = f64::from(img.width().max(img.height()));
        let shrink = long / f64::from(coarse_side);
        if shrink <= 1.0 || self.max_side <= coarse_side {
            return false; // the coarse pass saw every pixel, or the detail pass would not
        }
        if faces.is_empty() {
            return shrink > self.faceless_shrink;
        }
        faces
            .iter()
            .any(|d| d.bbox.width.min(d.bbox.height) / shrink < self.below)
    }
}

/// `v` rounded up to a multiple of the network's input size step (at least one step).
fn round_up(v: u32) -> usize {
    (v as usize).div_ceil(INPUT_MULTIPLE).max(1) * INPUT_MULTIPLE
}

/// The canvas `img` takes at `max_side`: its size once [`scaled`], rounded up to a multiple
/// of 32.
fn canvas_at(img: &RgbImage, max_side: u32) -> (usize, usize) {
    let k = shrink_factor(img, max_side);
    (
        round_up(img.width().div_ceil(k)),
        round_up(img.height().div_ceil(k)),
    )
}

/// The indices of `canvases` in runs, each run one forward pass: the images of one canvas
/// size together, in their order, at most `budget` canvas pixels a run (at least one image).
fn runs(canvases: &[(usize, usize)], budget: usize) -> Vec<Vec<usize>> {
    let mut by_size: Vec<((usize, usize), Vec<usize>)> = Vec::new();
    for (i, &canvas) in canvases.iter().enumerate() {
        match by_size.iter_mut().find(|(size, _)| *size == canvas) {
            Some((_, same)) => same.push(i),
            None => by_size.push((canvas, vec![i])),
        }
    }
    by_size
        .into_iter()
        .flat_map(|((w, h), same)| {
            let per_run = (budget / (w * h).max(1)).max(1);
            same.chunks(per_run)
                .map(<[usize]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `images`, each shrunk to at most `max_side`, through the network: one forward pass per
/// canvas size ([`canvas_at`], the image's own size rounded up to a multiple of 32), all the
/// images of that size together, at most `budget` canvas pixels a pass ([`runs`]), each run's
/// images shrunk only when it comes; faces in image pixels. An image's canvas never depends on the other images of its batch, so neither
/// do its faces: the black margin around an image changes the activations near its edges (a
/// black pixel is not the convolutions' zero padding after the first layer), which on one
/// shared canvas made a face's descriptor differ by 2e-4 between a batch of one and a batch
/// of four.
fn pass(
    net: &CenterFace,
    images: &[&RgbImage],
    max_side: u32,
    budget: usize,
    options: &CenterFaceOptions,
    device: &Device,
) -> Result<Vec<Vec<Detection>>, ModelError> {
    let canvases: Vec<(usize, usize)> = images.iter().map(|i| canvas_at(i, max_side)).collect();
    let mut found = vec![Vec::new(); images.len()];
    for run in runs(&canvases, budget) {
        let group: Vec<Scaled> = run
            .par_iter()
            .map(|&k| scaled(images[k], max_side))
            .collect();
        for (&k, faces) in run.iter().zip(same_canvas(net, &group, options, device)?) {
            found[k] = faces;
        }
    }
    Ok(found)
}

/// One forward pass over `images` (scaled, all of one canvas size); faces in image pixels.
fn same_canvas(
    net: &CenterFace,
    images: &[Scaled],
    options: &CenterFaceOptions,
    device: &Device,
) -> Result<Vec<Vec<Detection>>, ModelError> {
    let refs: Vec<&RgbImage> = images.iter().map(|s| s.pixels.as_ref()).collect();
    let x = canvas_batch(&refs, device)?;
    let (_, ch, cw, _) = x.dims4()?;
    let out = net.forward(&x)?;
    let (_, h4, w4, _) = out.dims4()?;
    let maps = out.flatten_all()?.to_vec1::<f32>()?;
    let per = h4 * w4 * HEAD_CHANNELS;
    Ok(images
        .par_iter()
        .zip(maps.par_chunks_exact(per))
        .map(|(s, map)| {
            let found = candidates(map, w4, (cw as f64, ch as f64), options.threshold);
            let (bx, by) = s.back;
            suppress(found, options.nms_iou, options.max_faces)
                .into_iter()
                .map(|d| Detection {
                    bbox: BBox {
                        x: d.bbox.x * bx,
                        y: d.bbox.y * by,
                        width: d.bbox.width * bx,
                        height: d.bbox.height * by,
                    },
                    landmarks: d.landmarks.map(|[x, y]| [x * bx, y * by]),
                    ..d
                })
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(logit: f32) -> Vec<f32> {
        let mut v = vec![0.0; HEAD_CHANNELS];
        v[0] = logit;
        v
    }

    #[test]
    fn decodes_a_centre_its_size_and_landmarks() {
        // A 2×2 map; cell (1, 0) holds a face of 8×16 px (height × width) centred at
        // 4·(1 + 0.25 + 0.5) = 7 (y) and 4·(0 + 0.5 + 0.5) = 4 (x).
        let mut map = [cell(-5.0), cell(-5.0), cell(2.0), cell(-5.0)].concat();
        let c = 2 * HEAD_CHANNELS;
        map[c + 1] = 2f32.ln(); // 4·2 = 8 px high
        map[c + 2] = 4f32.ln(); // 4·4 = 16 px wide
        map[c + 3] = 0.25;
        map[c + 4] = 0.5;
        map[c + 5] = 0.5; // first landmark: y at half the height
        map[c + 6] = 0.25; // x at a quarter of the width
        let found = candidates(&map, 2, (8.0, 8.0), 0.5);
        assert_eq!(found.len(), 1);
        let d = found[0];
        assert!((d.score - 1.0 / (1.0 + (-2f32).exp())).abs() < 1e-6);
        // x1 = 4 − 8 = −4 clamps to 0 and the box keeps its width, clipped at 8.
        assert_eq!((d.bbox.x, d.bbox.width), (0.0, 8.0));
        assert!((d.bbox.y - 3.0).abs() < 1e-6 && (d.bbox.height - 5.0).abs() < 1e-6);
        assert!((d.landmarks[0][0] - 4.0).abs() < 1e-6 && (d.landmarks[0][1] - 7.0).abs() < 1e-6);
    }

    #[test]
    fn detail_passes_take_at_most_their_pixel_budget_and_at_least_one_image() {
        // At 2048: a 4000×3000 photo shrinks by 2 to 2000×1500 (a 2016×1504 canvas); a 600×400
        // one stays (608×416).
        let large = RgbImage::new(4000, 3000);
        assert_eq!(canvas_at(&large, 2048), (2016, 1504));
        assert_eq!(scaled(&large, 2048).pixels.dimensions(), (2000, 1500));
        assert_eq!(canvas_at(&RgbImage::new(600, 400), 2048), (608, 416));
        let canvases = [(2016, 1504), (608, 416), (608, 416), (2016, 1504)];
        // Each large one alone (two 2016×1504 canvases are over the budget), the small
        // together.
        assert_eq!(runs(&canvases, 2048 * 2048), [vec![0], vec![3], vec![1, 2]]);
        // A budget below one image still runs every image, one at a time.
        assert_eq!(runs(&canvases, 1).len(), 4);
        // No budget: one pass per canvas size.
        assert_eq!(runs(&canvases, usize::MAX), [vec![0, 3], vec![1, 2]]);
    }

    #[test]
    fn a_box_map_moves_the_centre_by_box_fractions_and_scales_the_sides() {
        let b = BBox {
            x: 10.0,
            y: 20.0,
            width: 40.0,
            height: 50.0,
        };
        assert_eq!(BoxMap::IDENTITY.apply(&b), b);
        let map = BoxMap {
            dx: 0.1,
            dy: -0.2,
            sw: 1.5,
            sh: 1.2,
        };
        let to = map.apply(&b);
        // Centre (30, 45) moves by (4, −10); sides 60 × 60.
        assert!(
            (to.x - 4.0).abs() < 1e-9 && (to.y - 5.0).abs() < 1e-9,
            "{to:?}"
        );
        assert!((to.width - 60.0).abs() < 1e-9 && (to.height - 60.0).abs() < 1e-9);
        let back = BoxMap::between(&b, &to);
        for (got, want) in [
            (back.dx, 0.1),
            (back.dy, -0.2),
            (back.sw, 1.5),
            (back.sh, 1.2),
        ] {
            assert!((got - want).abs() < 1e-9, "{back:?}");
        }
    }

    #[test]
    fn suppression_keeps_the_best_of_overlapping_faces_and_the_cap() {
        let at = |x: f64, score: f32| Detection {
            score,
            bbox: BBox {
                x,
                y: 0.0,
                width: 10.0,
                height: 10.0,
            },
            landmarks: [[0.0; 2]; 5],
        };
        let kept = suppress(vec![at(0.0, 0.6), at(1.0, 0.9), at(50.0, 0.7)], 0.3, 10);
        assert_eq!(kept.iter().map(|d| d.score).collect::<Vec<_>>(), [0.9, 0.7]);
        assert_eq!(suppress(vec![at(0.0, 0.6), at(50.0, 0.7)], 0.3, 1).len(), 1);
    }

    #[test]
    fn a_batch_shares_one_canvas_with_each_image_at_the_top_left() {
        let a = RgbImage::from_pixel(40, 10, image::Rgb([1, 2, 3]));
        let b = RgbImage::from_pixel(10, 33, image::Rgb([9, 9, 9]));
        let x = canvas_batch(&[&a, &b], &Device::Cpu).expect("batch");
        assert_eq!(x.dims(), [2, 64, 64, 3]);
        let px = |i: usize, y: usize, xx: usize| {
            x.get(i)
                .and_then(|t| t.get(y))
                .and_then(|t| t.get(xx))
                .and_then(|t| t.to_vec1::<f32>())
                .expect("pixel")
        };
        assert_eq!(px(0, 9, 39), [1.0, 2.0, 3.0]);
        assert_eq!(px(0, 10, 0), [0.0, 0.0, 0.0]);
        assert_eq!(px(1, 32, 9), [9.0, 9.0, 9.0]);
        assert_eq!(px(1, 0, 10), [0.0, 0.0, 0.0]);
    }

    #[test]
    fn the_detail_pass_is_for_small_faces_and_large_faceless_images() {
        let detail = DetailPass::default();
        let face = |side: f64| Detection {
            score: 0.9,
            bbox: BBox {
                x: 0.0,
                y: 0.0,
                width: side,
                height: side * 1.2,
            },
            landmarks: [[0.0; 2]; 5],
        };
        let crowd = RgbImage::new(2000, 2000); // shrunk 3.125 times to 640
        assert!(
            detail.wanted(&crowd, &[face(300.0), face(100.0)], 640),
            "32 px at 640"
        );
        assert!(!detail.wanted(&crowd, &[face(300.0)], 640), "96 px at 640");
        assert!(detail.wanted(&crowd, &[], 640), "no face, shrunk 3 times");
        let photo = RgbImage::new(1000, 700); // shrunk 1.6 times
        assert!(
            !detail.wanted(&photo, &[], 640),
            "no face, shrunk under twice"
        );
        let small = RgbImage::new(600, 400); // not shrunk: the coarse pass saw every pixel
        assert!(!detail.wanted(&small, &[face(10.0)], 640));
        assert!(
            !detail.wanted(&crowd, &[face(100.0)], 2048),
            "the detail pass is no finer"
        );
    }

    #[test]
    fn large_images_shrink_by_a_whole_factor_and_map_back() {
        let img = RgbImage::new(3000, 1500);
        let s = scaled(&img, 1000);
        assert_eq!(s.pixels.dimensions(), (1000, 500));
        assert_eq!(s.back, (3.0, 3.0));
        let photo = RgbImage::new(1920, 1367);
        let s = scaled(&photo, 640);
        assert_eq!((s.pixels.dimensions(), s.back), ((640, 456), (3.0, 3.0)));
        assert_eq!(scaled(&RgbImage::new(200, 100), 1000).back, (1.0, 1.0));
    }

    #[test]
    fn reduce_averages_each_block_and_the_smaller_edge_blocks() {
        // 5×3, k = 2: blocks of 2×2, 1×2 (right), 2×1 (bottom), 1×1 (corner).
        let img = RgbImage::from_fn(5, 3, |x, y| {
            let v = (10 * x + 100 * y) as u8;
            image::Rgb([v, 255 - v, 7])
        });
        let r = reduce(&img, 2);
        assert_eq!(r.dimensions(), (3, 2));
        // (0 + 10 + 100 + 110) / 4 = 55; right column (40 + 140) / 2 = 90; bottom row
        // (200 + 210) / 2 = 205 (rounded from 205); corner 240.
        let first: Vec<u8> = [(0, 0), (2, 0), (0, 1), (2, 1)]
            .iter()
            .map(|&(x, y)| r.get_pixel(x, y)[0])
            .collect();
        assert_eq!(first, [55, 90, 205, 240]);
        assert_eq!(r.get_pixel(0, 0)[1], 200);
        assert_eq!(r.get_pixel(1, 1)[2], 7);
    }
}
