//! Pipeline benchmark: images/s and per-stage time on the six demo images at batch sizes 1, 4
//! and 8 (the six images repeated to 24 so every batch is full).
//!
//! Run: `cargo bench -p gpu-worker --bench pipeline` (after `scripts/fetch-weights.sh`).
//! Env: `FACEMATCH_WEIGHTS_DIR` (default `model-weights`), `FACEMATCH_DEVICE` (default `cpu`),
//! `BENCH_ROUNDS` (default 2, best round reported), `BENCH_BATCHES` (default `1,4,8`).

use std::{path::PathBuf, time::Instant};

use gpu_worker::{FacePipeline, PipelineOptions, StageTimings, decode_image, select_device};

fn ms(d: std::time::Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1000.0 / n as f64
}

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let weights = std::env::var_os("FACEMATCH_WEIGHTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("model-weights"));
    let device =
        select_device(&std::env::var("FACEMATCH_DEVICE").unwrap_or_else(|_| "cpu".into()))?;
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let batches: Vec<usize> = std::env::var("BENCH_BATCHES")
        .unwrap_or_else(|_| "1,4,8".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();

    let files: Vec<Vec<u8>> = (1..=6)
        .map(|i| std::fs::read(weights.join(format!("demo/sample{i}.jpg"))))
        .collect::<Result<_, _>>()?;
    let t = Instant::now();
    let images: Vec<image::RgbImage> = files
        .iter()
        .map(|b| decode_image(b))
        .collect::<Result<_, _>>()?;
    let decode_ms = ms(t.elapsed(), images.len());
    let t = Instant::now();
    let pipeline = FacePipeline::load(&weights, &device, PipelineOptions::default())?;
    println!(
        "device {device:?}, threads {}, load {:.0} ms",
        rayon::current_num_threads(),
        ms(t.elapsed(), 1)
    );
    println!("decode (image crate, single thread): {decode_ms:.1} ms/image");
    let work: Vec<image::RgbImage> = images.iter().cycle().take(24).cloned().collect();
    pipeline.run(&images[..1])?; // warm-up

    println!(
        "| batch | images/s (models) | images/s (+decode) | ms/img (+decode) | decode | detect | landmarks | align | describe |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &batch in &batches {
        let mut best: Option<(f64, StageTimings)> = None;
        for _ in 0..rounds {
            let mut timings = StageTimings::default();
            let t = Instant::now();
            for chunk in work.chunks(batch) {
                timings += pipeline.run_timed(chunk)?.1;
            }
            let secs = t.elapsed().as_secs_f64();
            if best.as_ref().is_none_or(|(s, _)| secs < *s) {
                best = Some((secs, timings));
            }
        }
        if let Some((secs, tm)) = best {
            let n = work.len();
            let e2e = secs * 1000.0 / n as f64 + decode_ms;
            println!(
                "| {batch} | {:.2} | {:.2} | {e2e:.1} | {decode_ms:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                n as f64 / secs,
                n as f64 / (secs + decode_ms * n as f64 / 1000.0),
                ms(tm.detect, n),
                ms(tm.landmarks, n),
                ms(tm.align, n),
                ms(tm.describe, n),
            );
        }
    }
    Ok(())
}
