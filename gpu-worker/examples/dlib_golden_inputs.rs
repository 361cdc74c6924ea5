//! Writes what `scripts/make-dlib-golden.py` feeds dlib: each demo image as decoded by our
//! decoder (lossless PNG, so dlib sees the very pixels the pipeline sees) and the 68
//! landmarks our pipeline found on it; plus sample3 enlarged 2× and 4× ([`enlarge`]), whose
//! faces are large enough for dlib to cut their chips from a pyramid level.
//!
//! `cargo run --release -p gpu-worker --example dlib_golden_inputs -- OUT_DIR`

use std::path::PathBuf;

use anyhow::Context;
use candle_core::Device;
use gpu_worker::{FacePipeline, PipelineOptions, decode_image, pipeline::SsdOptions};
use image::{RgbImage, imageops::FilterType};
use serde_json::json;

/// The enlargement the golden test repeats (Triangle filter: deterministic).
pub fn enlarge(img: &RgbImage, scale: u32) -> RgbImage {
    image::imageops::resize(
        img,
        img.width() * scale,
        img.height() * scale,
        FilterType::Triangle,
    )
}

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: dlib_golden_inputs OUT_DIR")?,
    );
    std::fs::create_dir_all(&out)?;
    let pipeline = FacePipeline::load(
        "model-weights".as_ref(),
        &Device::Cpu,
        // The dlib goldens were cut around the faces of face-api's SSD (the detector then).
        PipelineOptions::ssd(SsdOptions::default()),
    )?;
    let mut images = Vec::new();
    for (i, scale) in (1..=6).map(|i| (i, 1)).chain([(3, 2), (3, 4)]) {
        let path = format!("model-weights/demo/sample{i}.jpg");
        let img = decode_image(&std::fs::read(&path).with_context(|| path.clone())?)?;
        let img = if scale == 1 {
            img
        } else {
            enlarge(&img, scale)
        };
        let file = if scale == 1 {
            format!("sample{i}.png")
        } else {
            format!("sample{i}_x{scale}.png")
        };
        img.save(out.join(&file))?;
        let faces = pipeline.run(std::slice::from_ref(&img))?.remove(0);
        let faces: Vec<_> = faces
            .iter()
            .map(|f| json!({"landmarks": f.landmarks.as_slice()}))
            .collect();
        images.push(json!({"file": file, "source": format!("sample{i}.jpg"), "scale": scale, "faces": faces}));
    }
    std::fs::write(
        out.join("landmarks.json"),
        json!({"images": images}).to_string(),
    )?;
    Ok(())
}
