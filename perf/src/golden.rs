//! The golden checks of `gpu-worker/tests/golden_{networks,pipeline,dlib_chip}.rs`, with the
//! same inputs and tolerances, on any device and from a binary: a GPU machine may have no cargo,
//! and a test executable bakes in its source paths and links the models once per test file.
//!
//! Kept as a copy of the tests' comparisons (not shared with them) until the worker's tests
//! have one test kit crate both can use.

use std::path::{Path, PathBuf};

use anyhow::Context;
use candle_core::{Device, Module, Tensor};
use gpu_worker::{
    Alignment, Face, FacePipeline, PipelineOptions, decode_image,
    pipeline::{
        BBox, Normalize,
        detection::decode_box,
        dlib_chip::{ChipDetails, extract_chip},
        preprocess::{CropRect, pad_resize_into},
    },
    weights::sha256_hex,
};
use serde_json::Value;

/// Where the checks read their inputs.
#[derive(Debug, Clone, clap::Args)]
pub struct GoldenArgs {
    /// Converted weights and `demo/sample1..6.jpg`.
    #[arg(long, default_value = "model-weights")]
    pub weights_dir: PathBuf,
    /// face-api's golden outputs (`synthetic.json`, `image-rs/sample*.json`).
    #[arg(
        long,
        env = "FACEMATCH_GOLDEN_DIR",
        default_value = "../shared/models/golden"
    )]
    pub golden_dir: PathBuf,
    /// dlib's chips (`chips.json` and its PNGs).
    #[arg(long, default_value = "gpu-worker/tests/golden/dlib")]
    pub dlib_dir: PathBuf,
}

/// One compared quantity.
#[derive(Debug, Clone)]
pub struct Row {
    pub check: String,
    pub measured: String,
    pub tolerance: String,
    pub ok: bool,
}

impl Row {
    fn new(check: impl Into<String>, measured: String, tolerance: &str, ok: bool) -> Self {
        Self {
            check: check.into(),
            measured,
            tolerance: tolerance.into(),
            ok,
        }
    }
}

/// Every check on `device`; an `Err` is an input that could not be read or a model that
/// failed to run, not a figure out of tolerance.
pub fn run(device: &Device, args: &GoldenArgs) -> anyhow::Result<Vec<Row>> {
    anyhow::ensure!(
        args.golden_dir.join("synthetic.json").is_file(),
        "golden files not found in {} (--golden-dir or FACEMATCH_GOLDEN_DIR)",
        args.golden_dir.display()
    );
    let load = |align| {
        let options = PipelineOptions {
            align,
            ..PipelineOptions::default()
        };
        FacePipeline::load(&args.weights_dir, device, options)
            .with_context(|| format!("loading the models from {}", args.weights_dir.display()))
    };
    let face_api = load(Alignment::FaceApi)?;
    let dlib = load(Alignment::Dlib)?;
    let samples = load_samples(args)?;

    let mut rows = networks(
        &face_api,
        &read_json(&args.golden_dir.join("synthetic.json"))?,
    )?;
    rows.extend(pipeline_face_api(&face_api, &samples)?);
    rows.push(pipeline_dlib(&dlib, &samples)?);
    rows.extend(dlib_chips(&dlib, args)?);
    Ok(rows)
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    serde_json::from_str(&text).with_context(|| path.display().to_string())
}

fn field<'a>(v: &'a Value, keys: &[&str]) -> anyhow::Result<&'a Value> {
    keys.iter()
        .try_fold(v, |v, k| v.get(k))
        .with_context(|| format!("golden field {}", keys.join(".")))
}

fn f32s(v: &Value) -> anyhow::Result<Vec<f32>> {
    v.as_array()
        .context("golden array")?
        .iter()
        .map(|x| x.as_f64().map(|x| x as f32).context("golden number"))
        .collect()
}

/// Standard base64 of little-endian f32s (the golden files' raw arrays).
fn b64_f32(s: &str) -> anyhow::Result<Vec<f32>> {
    let val = |c: u8| -> anyhow::Result<u32> {
        Ok(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => anyhow::bail!("bad base64 byte {c}"),
        })
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut bytes = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        bytes.extend(&acc.to_be_bytes()[1..1 + n]);
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

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

/// `golden_networks.rs`: each network on the synthetic input, max |d| ≤ 1e-4 (L2 for the
/// descriptor).
fn networks(p: &FacePipeline, g: &Value) -> anyhow::Result<Vec<Row>> {
    const TOL: f32 = 1e-4;
    let device = p.device();
    let (ssd, lm, rec) = p.networks();
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

/// The six demo images decoded by the `image` crate, each with its golden file.
fn load_samples(args: &GoldenArgs) -> anyhow::Result<Vec<(image::RgbImage, Value)>> {
    crate::demo_jpegs(&args.weights_dir)?
        .iter()
        .zip(1..)
        .map(|(bytes, i)| {
            let img = decode_image(bytes).with_context(|| format!("demo sample{i}.jpg"))?;
            let g = read_json(&args.golden_dir.join(format!("image-rs/sample{i}.json")))?;
            Ok((img, g))
        })
        .collect()
}

fn bbox(v: &Value) -> anyhow::Result<BBox> {
    let f = |k: &str| v.get(k).and_then(Value::as_f64).context("golden box field");
    Ok(BBox {
        x: f("x")?,
        y: f("y")?,
        width: f("width")?,
        height: f("height")?,
    })
}

/// Worst differences of one image's faces from its golden faces.
struct Diffs {
    iou: f64,
    bbox: f64,
    landmarks: f64,
    descriptor: f32,
}

fn compare_faces(faces: &[Face], g: &Value) -> anyhow::Result<Diffs> {
    let mut worst = Diffs {
        iou: 1.0,
        bbox: 0.0,
        landmarks: 0.0,
        descriptor: 0.0,
    };
    for gf in field(g, &["faces"])?.as_array().context("faces")? {
        let gb = bbox(field(gf, &["box"])?)?;
        let Some((f, iou)) = faces
            .iter()
            .map(|f| {
                let b = BBox {
                    x: f64::from(f.bbox[0]),
                    y: f64::from(f.bbox[1]),
                    width: f64::from(f.bbox[2]),
                    height: f64::from(f.bbox[3]),
                };
                (f, b.iou(&gb))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
        else {
            worst.iou = 0.0;
            continue;
        };
        worst.iou = worst.iou.min(iou);
        let db = [gb.x, gb.y, gb.width, gb.height]
            .iter()
            .zip(f.bbox)
            .map(|(a, b)| (a - f64::from(b)).abs())
            .fold(0.0, f64::max);
        let mut dl = 0f64;
        for (q, p) in field(gf, &["landmarks"])?
            .as_array()
            .context("landmarks")?
            .iter()
            .zip(&f.landmarks)
        {
            let c = |k: usize| q.get(k).and_then(Value::as_f64).context("landmark");
            dl = dl.max((c(0)? - f64::from(p[0])).hypot(c(1)? - f64::from(p[1])));
        }
        let dd = l2(&f.descriptor, &f32s(field(gf, &["descriptor"])?)?);
        worst.bbox = worst.bbox.max(db);
        worst.landmarks = worst.landmarks.max(dl);
        worst.descriptor = worst.descriptor.max(dd);
    }
    Ok(worst)
}

/// `golden_pipeline.rs`: face-api's crop, batches of 4 and 2; per image the same faces (IoU
/// ≥ 0.9), boxes and landmarks within 0.5 px, descriptors within 1e-3 L2, and the decoder's
/// pixels equal to the golden decoder's.
fn pipeline_face_api(
    p: &FacePipeline,
    samples: &[(image::RgbImage, Value)],
) -> anyhow::Result<Vec<Row>> {
    let images: Vec<image::RgbImage> = samples.iter().map(|(img, _)| img.clone()).collect();
    let mut faces = Vec::new();
    for chunk in images.chunks(4) {
        faces.extend(p.run(chunk)?);
    }
    let mut rows = Vec::new();
    for (i, ((img, g), f)) in samples.iter().zip(&faces).enumerate() {
        let golden_rgb = field(g, &["rgb_sha256"])?.as_str().context("rgb_sha256")?;
        let pixels_ok = sha256_hex(img.as_raw()) == golden_rgb;
        let expected = field(g, &["faces"])?.as_array().context("faces")?.len();
        let d = compare_faces(f, g)?;
        rows.push(Row::new(
            format!("pipeline face-api: sample{}", i + 1),
            format!(
                "{}/{expected} faces, min IoU {:.3}, box {:.1e} px, landmarks {:.1e} px, \
                 descriptor L2 {:.1e}{}",
                f.len(),
                d.iou,
                d.bbox,
                d.landmarks,
                d.descriptor,
                if pixels_ok {
                    ""
                } else {
                    ", DECODED PIXELS DIFFER"
                },
            ),
            "same faces (IoU ≥ 0.9), ≤ 0.5 px, ≤ 0.5 px, ≤ 1e-3",
            pixels_ok
                && f.len() == expected
                && d.iou >= 0.9
                && d.bbox <= 0.5
                && d.landmarks <= 0.5
                && d.descriptor <= 1e-3,
        ));
    }
    Ok(rows)
}

/// `golden_pipeline.rs`, dlib crop: the first two images in one batch give the golden face
/// counts and descriptors of a sane norm.
fn pipeline_dlib(p: &FacePipeline, samples: &[(image::RgbImage, Value)]) -> anyhow::Result<Row> {
    let images: Vec<image::RgbImage> = samples.iter().take(2).map(|(i, _)| i.clone()).collect();
    let faces = p.run(&images)?;
    let mut counts_ok = true;
    let (mut lo, mut hi) = (f32::INFINITY, 0f32);
    for ((_, g), f) in samples.iter().zip(&faces) {
        counts_ok &= f.len() == field(g, &["faces"])?.as_array().context("faces")?.len();
        for face in f {
            let norm = face.descriptor.iter().map(|v| v * v).sum::<f32>().sqrt();
            (lo, hi) = (lo.min(norm), hi.max(norm));
        }
    }
    Ok(Row::new(
        "pipeline dlib: sample1+2",
        format!(
            "face counts {}, descriptor norms {lo:.3}..{hi:.3}",
            if counts_ok { "equal" } else { "DIFFER" }
        ),
        "golden counts, norms in (0.5, 3)",
        counts_ok && lo > 0.5 && hi < 3.0,
    ))
}

/// `golden_dlib_chip.rs`: our chips against dlib's (mean |d| ≤ 1 grey level, on the CPU in
/// any case) and the recognition net's descriptors of the two within 1e-3 L2 (on `device`).
fn dlib_chips(p: &FacePipeline, args: &GoldenArgs) -> anyhow::Result<Vec<Row>> {
    const SIZE: usize = 150;
    let golden = read_json(&args.dlib_dir.join("chips.json"))?;
    let faces = field(&golden, &["faces"])?.as_array().context("faces")?;
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
