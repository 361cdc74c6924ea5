//! The whole pipeline on the six demo images against face-api's outputs.

use anyhow::Context;
use gpu_worker::{Face, FacePipeline, decode_image, pipeline::BBox, weights::sha256_hex};
use serde_json::Value;

use super::{
    GoldenInputs, Row,
    read::{f32s, field, l2, read_json},
};

/// The six demo images decoded by the `image` crate, each with its golden file.
pub fn load_samples(args: &GoldenInputs) -> anyhow::Result<Vec<(image::RgbImage, Value)>> {
    (1..=6)
        .map(|i| {
            let path = args.weights_dir.join(format!("demo/sample{i}.jpg"));
            let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
            let img = decode_image(&bytes).with_context(|| format!("demo sample{i}.jpg"))?;
            let g = read_json(&args.golden_dir.join(format!("image-rs/sample{i}.json")))?;
            Ok((img, g))
        })
        .collect()
}

/// A golden face's box.
pub(crate) fn bbox(v: &Value) -> anyhow::Result<BBox> {
    let f = |k: &str| v.get(k).and_then(Value::as_f64).context("golden box field");
    Ok(BBox {
        x: f("x")?,
        y: f("y")?,
        width: f("width")?,
        height: f("height")?,
    })
}

/// A found face's box.
pub(crate) fn face_box(f: &Face) -> BBox {
    let [x, y, width, height] = f.bbox.map(f64::from);
    BBox {
        x,
        y,
        width,
        height,
    }
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
            .map(|f| (f, face_box(f).iou(&gb)))
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

/// face-api's crop, batches of 4 and 2; per image the same faces (IoU
/// ≥ 0.9), boxes and landmarks within 0.5 px, descriptors within 1e-3 L2, and the decoder's
/// pixels equal to the golden decoder's.
pub fn pipeline_face_api(
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

/// dlib's crop: the first two images in one batch give the golden face
/// counts and descriptors of a sane norm.
pub fn pipeline_dlib(
    p: &FacePipeline,
    samples: &[(image::RgbImage, Value)],
) -> anyhow::Result<Row> {
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
