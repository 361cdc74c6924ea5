//! Fits the map from a CenterFace box to the box face-api's SSD draws around the same face
//! (`gpu_worker::pipeline::centerface::BoxMap`), the crop the 68-point landmark net was made
//! for: every face both detectors find in the photos (paired at IoU ≥ 0.4), its map, and the
//! medians. Fit on photos no test uses (the held-out ones), then check on the demo images.
//!
//! `cargo run --release -p facematch-perf --bin landmark-box -- --photos /tmp/held-out`

use std::path::PathBuf;

use anyhow::Context;
use candle_core::Device;
use clap::Parser;
use gpu_worker::{
    Face, FacePipeline, PipelineOptions, decode_image,
    pipeline::{BBox, CenterFaceOptions, Detector, SsdOptions, centerface::BoxMap},
};

#[derive(Debug, Parser)]
struct Args {
    /// Folder of photos with faces.
    #[arg(long)]
    photos: PathBuf,
    #[arg(long, default_value = "model-weights")]
    weights_dir: PathBuf,
}

fn bbox(f: &Face) -> BBox {
    let [x, y, width, height] = f.bbox.map(f64::from);
    BBox {
        x,
        y,
        width,
        height,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let load = |detector| {
        FacePipeline::load(
            &args.weights_dir,
            &Device::Cpu,
            PipelineOptions {
                detector,
                ..PipelineOptions::default()
            },
        )
        .context("loading the weights (run scripts/fetch-weights.sh first)")
    };
    let ssd = load(Detector::Ssd(SsdOptions::face_api()))?;
    let centerface = load(Detector::CenterFace(CenterFaceOptions {
        landmark_box: BoxMap::IDENTITY,
        ..CenterFaceOptions::default()
    }))?;
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&args.photos)
        .with_context(|| args.photos.display().to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    photos.sort();
    let mut maps = Vec::new();
    println!("| photo | face | IoU | dx | dy | sw | sh |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for path in &photos {
        let img =
            decode_image(&std::fs::read(path)?).with_context(|| path.display().to_string())?;
        let by_ssd = ssd.run(std::slice::from_ref(&img))?.remove(0);
        let by_centerface = centerface.run(std::slice::from_ref(&img))?.remove(0);
        for (k, f) in by_centerface.iter().enumerate() {
            let cf = bbox(f);
            let Some((s, iou)) = by_ssd
                .iter()
                .map(|s| (bbox(s), bbox(s).iou(&cf)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .filter(|(_, iou)| *iou >= 0.4)
            else {
                continue;
            };
            let m = BoxMap::between(&cf, &s);
            println!(
                "| {} | {k} | {iou:.2} | {:.3} | {:.3} | {:.3} | {:.3} |",
                path.file_name().unwrap_or_default().to_string_lossy(),
                m.dx,
                m.dy,
                m.sw,
                m.sh
            );
            maps.push(m);
        }
    }
    anyhow::ensure!(!maps.is_empty(), "no face found by both detectors");
    let of = |f: fn(&BoxMap) -> f64| median(maps.iter().map(f).collect());
    println!(
        "median of {} faces: dx {:.3}, dy {:.3}, sw {:.3}, sh {:.3}",
        maps.len(),
        of(|m| m.dx),
        of(|m| m.dy),
        of(|m| m.sw),
        of(|m| m.sh)
    );
    Ok(())
}
