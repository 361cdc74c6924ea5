//! Each network on face-api's synthetic input.

use anyhow::Context;
use candle_core::{Device, Module, Tensor};
use gpu_worker::{
    FacePipeline,
    pipeline::{
        Normalize,
        detection::decode_box,
        preprocess::{CropRect, pad_resize_into},
    },
};
use serde_json::Value;

use super::{
    Row,
    read::{b64_f32, f32s, field, l2, max_abs_diff},
};

/// The synthetic input of `synthetic.json`: `((x*x + 2*y*y + 4096*c) >> 5) & 255`.
fn synthetic_input(size: u32, norm: Normalize, device: &Device) -> candle_core::Result<Tensor> {
    let img = image::RgbImage::from_fn(size, size, |x, y| {
        let v = |c: u32| (((x * x + 2 * y * y + 4096 * c) >> 5) & 255) as u8;
        image::Rgb([v(0), v(1), v(2)])
    });
    let n = size as usize;
    let mut buf = vec![0f32; n * n * 3];
    pad_resize_into(&img, CropRect::full(&img), false, n, norm, &mut buf);
    Tensor::from_vec(buf, (1, n, n, 3), device)
}

fn flat(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// Each network on the synthetic input, max |d| ≤ 1e-4 (L2 for the
/// descriptor).
pub fn networks(p: &FacePipeline, g: &Value) -> anyhow::Result<Vec<Row>> {
    const TOL: f32 = 1e-4;
    let device = p.device();
    let (ssd, lm, rec) = p.networks();
    let ssd = ssd.context("the synthetic check needs the SSD pipeline")?;
    let out = ssd.forward(&synthetic_input(512, Normalize::Ssd, device)?)?;
    let scores = flat(&out.scores)?;
    let enc = flat(&out.box_encodings)?;
    let boxes: Vec<f32> = ssd
        .anchors()
        .iter()
        .zip(enc.chunks_exact(4))
        .flat_map(|(a, e)| decode_box([e[0], e[1], e[2], e[3]], *a))
        .collect();
    let text = |keys: &[&str]| -> anyhow::Result<Vec<f32>> {
        b64_f32(field(g, keys)?.as_str().context("base64 string")?)
    };
    let ds = max_abs_diff(&scores, &text(&["ssd_512", "scores_f32le_b64"])?);
    let db = max_abs_diff(&boxes, &text(&["ssd_512", "boxes_f32le_b64"])?);
    let raw = flat(&lm.forward(&synthetic_input(112, Normalize::MeanRgb, device)?)?)?;
    let dl = max_abs_diff(&raw, &f32s(field(g, &["landmark68_112", "raw136"])?)?);
    let d = flat(&rec.forward(&synthetic_input(150, Normalize::MeanRgb, device)?)?)?;
    let dd = l2(&d, &f32s(field(g, &["recognition_150", "descriptor"])?)?);
    Ok(vec![
        Row::new(
            "ssd 512: scores",
            format!("max abs {ds:.2e}"),
            "≤ 1e-4",
            ds <= TOL,
        ),
        Row::new(
            "ssd 512: boxes",
            format!("max abs {db:.2e}"),
            "≤ 1e-4",
            db <= TOL,
        ),
        Row::new(
            "landmarks 112: raw 136",
            format!("max abs {dl:.2e}"),
            "≤ 1e-4",
            dl <= TOL,
        ),
        Row::new(
            "recognition 150: descriptor",
            format!("L2 {dd:.2e}"),
            "≤ 1e-4",
            dd <= TOL,
        ),
    ])
}
