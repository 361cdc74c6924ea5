//! Our dlib chips against dlib's own, and their descriptors.

use anyhow::Context;
use candle_core::{Module, Tensor};
use gpu_worker::{
    FacePipeline, decode_image,
    pipeline::{
        Normalize,
        dlib_chip::{ChipDetails, extract_chip},
    },
};
use serde_json::Value;

use super::{
    GoldenInputs, Row,
    read::{field, l2, read_json},
};

/// Our chips against dlib's (mean |d| ≤ 1 grey level, on the CPU in
/// any case) and the recognition net's descriptors of the two within 1e-3 L2 (on `device`).
pub fn dlib_chips(p: &FacePipeline, args: &GoldenInputs) -> anyhow::Result<Vec<Row>> {
    const SIZE: usize = 150;
    let golden = read_json(&args.dlib_dir.join("chips.json"))?;
    let faces = field(&golden, &["faces"])?.as_array().context("faces")?;
    anyhow::ensure!(
        faces.len() >= 6,
        "chips.json: one face per demo image at least"
    );
    let normalised = |chip: &[f32]| -> Vec<f32> {
        chip.iter()
            .enumerate()
            .map(|(i, &v)| Normalize::MeanRgb.apply(i % 3, v))
            .collect::<Vec<_>>()
    };
    let (mut ours_all, mut dlib_all) = (Vec::new(), Vec::new());
    let mut worst_mad = 0f32;
    let mut cache: Option<(String, image::RgbImage)> = None;
    for face in faces {
        let name = field(face, &["image"])?.as_str().context("image")?;
        let scale = field(face, &["scale"])?
            .as_u64()
            .and_then(|s| u32::try_from(s).ok())
            .context("scale")?;
        let key = format!("{name}×{scale}");
        if cache.as_ref().is_none_or(|(k, _)| *k != key) {
            let path = args.weights_dir.join("demo").join(name);
            let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
            let img = decode_image(&bytes)?;
            let img = if scale == 1 {
                img
            } else {
                let (w, h) = (img.width() * scale, img.height() * scale);
                image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle)
            };
            cache = Some((key, img));
        }
        let img = &cache.as_ref().context("decoded image")?.1;
        let mut pts = [[0f64; 2]; 68];
        for (p, v) in pts.iter_mut().zip(
            field(face, &["landmarks"])?
                .as_array()
                .context("landmarks")?,
        ) {
            let c = |k: usize| v.get(k).and_then(Value::as_f64).context("landmark");
            *p = [c(0)?, c(1)?];
        }
        let ours = extract_chip(img, &ChipDetails::for_face(&pts, SIZE, 0.25));
        let chip = field(face, &["chip"])?.as_str().context("chip")?;
        let path = args.dlib_dir.join(chip);
        let dlib: Vec<f32> = image::open(&path)
            .with_context(|| path.display().to_string())?
            .to_rgb8()
            .into_raw()
            .into_iter()
            .map(f32::from)
            .collect();
        anyhow::ensure!(ours.len() == dlib.len(), "{chip}: chip size");
        let mad = ours
            .iter()
            .zip(&dlib)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / ours.len() as f32;
        worst_mad = worst_mad.max(mad);
        ours_all.extend(normalised(&ours));
        dlib_all.extend(normalised(&dlib));
    }
    let (_, _, recognition) = p.networks();
    let describe = |buf: Vec<f32>| -> candle_core::Result<Vec<Vec<f32>>> {
        let x = Tensor::from_vec(buf, (faces.len(), SIZE, SIZE, 3), p.device())?;
        recognition.forward(&x)?.to_vec2::<f32>()
    };
    let (ours, dlib) = (describe(ours_all)?, describe(dlib_all)?);
    let worst_l2 = ours
        .iter()
        .zip(&dlib)
        .map(|(a, b)| l2(a, b))
        .fold(0f32, f32::max);
    Ok(vec![
        Row::new(
            format!("dlib chips ({} faces): pixels", faces.len()),
            format!("worst mean abs {worst_mad:.3} grey levels"),
            "≤ 1.0",
            worst_mad <= 1.0,
        ),
        Row::new(
            format!("dlib chips ({} faces): descriptors", faces.len()),
            format!("worst L2 {worst_l2:.2e}"),
            "≤ 1e-3",
            worst_l2 <= 1e-3,
        ),
    ])
}
