//! Crops of the demo photos' faces, found by the real pipeline on the CPU (feature `worker`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use gpu_worker::{FacePipeline, PipelineOptions, decode_image};
use image::{ImageFormat, RgbImage, imageops::FilterType};

use crate::{
    images::{encode, no_face},
    paths::{demo, weights_dir},
};

/// The default pipeline on the CPU, loaded once per test binary (it finds the faces to crop).
fn pipeline() -> &'static FacePipeline {
    static PIPELINE: OnceLock<FacePipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        FacePipeline::load(
            &weights_dir(),
            &candle_core::Device::Cpu,
            PipelineOptions::default(),
        )
        .expect("weights — run scripts/fetch-weights.sh")
    })
}

/// A demo image decoded, with the boxes `[x, y, w, h]` of its faces.
type DemoFaces = Arc<(RgbImage, Vec<[f32; 4]>)>;

/// A demo image and its faces: read and detected once per test binary however many crops are
/// cut from it.
fn demo_faces(sample: u32) -> DemoFaces {
    static SEEN: OnceLock<Mutex<HashMap<u32, DemoFaces>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Mutex::default);
    if let Some(found) = seen.lock().expect("demo cache").get(&sample) {
        return Arc::clone(found);
    }
    let img = decode_image(&demo(sample)).expect("demo decodes");
    let boxes = pipeline()
        .run(std::slice::from_ref(&img))
        .expect("pipeline")
        .remove(0)
        .into_iter()
        .map(|f| f.bbox)
        .collect();
    let found = Arc::new((img, boxes));
    seen.lock()
        .expect("demo cache")
        .insert(sample, Arc::clone(&found));
    found
}

/// Face `face` of demo image `sample`, cropped with a margin of 0.6 of the box on each side,
/// scaled by `scale`, and encoded as `format`.
pub fn face_crop(sample: u32, face: usize, scale: f32, format: ImageFormat) -> Vec<u8> {
    let demo = demo_faces(sample);
    let (img, boxes) = &*demo;
    let [x, y, w, h] = *boxes
        .get(face)
        .unwrap_or_else(|| panic!("demo image {sample} has no face {face}"));
    let (mx, my) = (w * 0.6, h * 0.6);
    let x0 = (x - mx).max(0.0) as u32;
    let y0 = (y - my).max(0.0) as u32;
    let x1 = ((x + w + mx) as u32).min(img.width());
    let y1 = ((y + h + my) as u32).min(img.height());
    let crop = image::imageops::crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image();
    let crop = if (scale - 1.0).abs() > f32::EPSILON {
        let (cw, ch) = crop.dimensions();
        image::imageops::resize(
            &crop,
            (cw as f32 * scale) as u32,
            (ch as f32 * scale) as u32,
            FilterType::Triangle,
        )
    } else {
        crop
    };
    encode(&crop, format)
}

/// Four group photos, crops of their faces (two of the same face), and a blank image: the
/// set the fault tests run through a failing system.
pub fn eight_images() -> Vec<(String, Vec<u8>)> {
    vec![
        ("group1.jpg".into(), demo(1)),
        ("face-a.png".into(), face_crop(1, 0, 1.0, ImageFormat::Png)),
        ("group2.jpg".into(), demo(2)),
        (
            "face-a-small.jpg".into(),
            face_crop(1, 0, 0.7, ImageFormat::Jpeg),
        ),
        ("group3.jpg".into(), demo(3)),
        ("face-c.jpg".into(), face_crop(2, 0, 0.8, ImageFormat::Jpeg)),
        ("group4.jpg".into(), demo(4)),
        ("blank.png".into(), no_face()),
    ]
}
