//! Where CenterFace's time goes: one batch of the demo images as the coarse pass packs it
//! (each shrunk to at most `--max-side`, on one canvas), run `--rounds` times; the fastest
//! time of each stage (stem, each block, neck, head) and of the whole forward pass.
//!
//! `cargo run --release -p facematch-perf --bin centerface-stages [-- --batch 4 --rounds 10]`

use std::{path::PathBuf, time::Instant};

use anyhow::Context;
use candle_core::Device;
use clap::Parser;
use gpu_worker::{
    decode_image,
    models::centerface::CenterFace,
    pipeline::centerface::{canvas_batch, reduce},
    weights::{self, CENTERFACE_FILE},
};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "model-weights")]
    weights_dir: PathBuf,
    /// Images in the batch (the demo images in turn).
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Longest side of each image after shrinking by a whole factor.
    #[arg(long, default_value_t = 640)]
    max_side: u32,
    #[arg(long, default_value_t = 10)]
    rounds: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let vb = weights::load_pinned(&args.weights_dir, CENTERFACE_FILE, &Device::Cpu)
        .context("run scripts/fetch-weights.sh first")?;
    let net = CenterFace::load(vb)?;
    let demos = facematch_perf::demo_jpegs(&args.weights_dir)?;
    let images = (0..args.batch)
        .map(|i| {
            let img = decode_image(&demos[i % demos.len()])?;
            let long = img.width().max(img.height());
            Ok(reduce(&img, long.div_ceil(args.max_side).max(1)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let refs: Vec<&image::RgbImage> = images.iter().collect();
    let x = canvas_batch(&refs, &Device::Cpu)?;
    println!("input {:?}", x.dims());
    let mut best: Vec<(String, f64)> = Vec::new();
    let mut whole = f64::INFINITY;
    for _ in 0..args.rounds {
        let start = Instant::now();
        let mut last = start;
        let mut k = 0;
        net.forward_staged(&x, &mut |name| {
            let ms = last.elapsed().as_secs_f64() * 1e3;
            last = Instant::now();
            match best.get_mut(k) {
                Some((_, b)) => *b = b.min(ms),
                None => best.push((name.to_owned(), ms)),
            }
            k += 1;
        })?;
        whole = whole.min(start.elapsed().as_secs_f64() * 1e3);
    }
    for (name, ms) in &best {
        println!("{name:>8} {ms:7.2} ms");
    }
    println!(
        "{:>8} {:7.2} ms (fastest whole pass; the stages' fastest sum to {:.2})",
        "forward",
        whole,
        best.iter().map(|(_, ms)| ms).sum::<f64>()
    );
    Ok(())
}
