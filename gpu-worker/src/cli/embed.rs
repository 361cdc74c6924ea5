//! `gpu-worker embed FILE...`: one JSON line per image on stdout. A file that cannot be read
//! or decoded gets an `{"file", "error"}` line and the others still run.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use gpu_worker::{
    Alignment, Face, FacePipeline, PipelineOptions, decode_image,
    pipeline::{Detector, DetectorKind},
    select_device,
};
use rayon::prelude::*;
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Image files (JPEG, PNG, WebP, GIF, BMP).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Folder of the converted, pinned `.safetensors` weights.
    #[arg(long, env = "FACEMATCH_WEIGHTS_DIR", default_value = "model-weights")]
    weights_dir: PathBuf,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[arg(long, env = "FACEMATCH_DEVICE", default_value = "auto")]
    device: String,
    /// Face detector: `centerface` or `ssd` (face-api's), as the worker's.
    #[arg(long, env = "FACEMATCH_DETECTOR", default_value = "centerface")]
    detector: DetectorKind,
    /// Most faces kept per image.
    #[arg(long, env = "FACEMATCH_MAX_FACES", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_faces: u32,
    /// Descriptor crop: `dlib` (dlib's face chip, the network's own) or `faceapi`.
    #[arg(long, env = "FACEMATCH_ALIGN", default_value = "dlib")]
    align: Alignment,
    /// Images per forward pass.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    batch: u32,
}

fn face_json(f: &Face) -> Value {
    json!({
        "score": f.score,
        "box": {"x": f.bbox[0], "y": f.bbox[1], "width": f.bbox[2], "height": f.bbox[3]},
        "landmarks": f.landmarks.as_slice(),
        "descriptor": f.descriptor.as_slice(),
    })
}

pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    let device = select_device(&args.device)?;
    let options = PipelineOptions {
        detector: Detector::with_max_faces(args.detector, args.max_faces as usize),
        align: args.align,
        ..PipelineOptions::default()
    };
    let pipeline = FacePipeline::load(&args.weights_dir, &device, options)
        .with_context(|| format!("loading weights from {}", args.weights_dir.display()))?;
    for files in args.files.chunks(args.batch as usize) {
        let decoded: Vec<Result<image::RgbImage, String>> = files
            .par_iter()
            .map(|p| {
                let bytes = std::fs::read(p).map_err(|e| format!("cannot read file: {e}"))?;
                decode_image(&bytes).map_err(|e| e.to_string())
            })
            .collect();
        let images: Vec<image::RgbImage> = decoded
            .iter()
            .filter_map(|d| d.as_ref().ok().cloned())
            .collect();
        let mut faces = pipeline.run(&images)?.into_iter();
        for (path, d) in files.iter().zip(&decoded) {
            let line = match d {
                Ok(img) => json!({
                    "file": path.display().to_string(),
                    "width": img.width(),
                    "height": img.height(),
                    "faces": faces.next().unwrap_or_default().iter().map(face_json).collect::<Vec<_>>(),
                }),
                Err(e) => json!({"file": path.display().to_string(), "error": e}),
            };
            println!("{line}");
        }
    }
    Ok(())
}
