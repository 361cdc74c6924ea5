//! The checks `scripts/gpu-check.sh` runs on a GPU machine, in one binary so one CUDA build is
//! carried (a GPU machine may have no cargo, and the carry is limited to 64 MiB):
//!
//! - `golden`: the golden tests' comparisons (`facematch_golden`) on a device;
//! - `throughput`: the worker's decode + pipeline in-process at several batch sizes;
//! - `index`: the index search timings, checked against the CPU path.
//!
//! `gpu-check golden --device cuda [--weights-dir DIR --golden-dir DIR --dlib-dir DIR]`

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use facematch_golden::{self as golden, GoldenInputs};
use facematch_perf::{
    index_bench::{self, IndexBenchArgs},
    pipeline_bench::{self, PipelineBenchArgs},
};

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The golden checks; a table of measured against allowed differences.
    Golden {
        /// `cpu` or `cuda[:N]`.
        #[arg(long, default_value = "cpu")]
        device: String,
        #[command(flatten)]
        paths: GoldenArgs,
    },
    /// As `worker-throughput --in-process`.
    Throughput(PipelineBenchArgs),
    /// As `index-search`.
    Index(IndexBenchArgs),
}

/// Where the golden checks read their inputs (relative to the working directory).
#[derive(Debug, Clone, clap::Args)]
struct GoldenArgs {
    /// Converted weights and `demo/sample1..6.jpg`.
    #[arg(long, default_value = "model-weights")]
    weights_dir: PathBuf,
    /// face-api's golden outputs (`synthetic.json`, `image-rs/sample*.json`).
    #[arg(
        long,
        env = "FACEMATCH_GOLDEN_DIR",
        default_value = "gpu-worker/tests/golden/faceapi"
    )]
    golden_dir: PathBuf,
    /// dlib's chips (`chips.json` and its PNGs).
    #[arg(long, default_value = "gpu-worker/tests/golden/dlib")]
    dlib_dir: PathBuf,
    /// The CenterFace detector's reference outputs and crops.
    #[arg(long, default_value = "gpu-worker/tests/golden/centerface")]
    centerface_dir: PathBuf,
}

fn main() -> anyhow::Result<()> {
    // As the worker binary does: before any other thread starts.
    gpu_worker::memory::reuse_freed_memory();
    let ok = match Args::parse().command {
        Command::Golden { device, paths } => {
            let device = gpu_worker::select_device(&device)?;
            let inputs = GoldenInputs {
                weights_dir: paths.weights_dir,
                golden_dir: paths.golden_dir,
                dlib_dir: paths.dlib_dir,
                centerface_dir: paths.centerface_dir,
            };
            let rows = golden::run(&device, &inputs)?;
            println!("| check | measured | tolerance | within |");
            println!("| --- | --- | --- | :---: |");
            for r in &rows {
                let within = if r.ok { "yes" } else { "**NO**" };
                println!(
                    "| {} | {} | {} | {within} |",
                    r.check, r.measured, r.tolerance
                );
            }
            rows.iter().all(|r| r.ok)
        }
        Command::Throughput(args) => {
            pipeline_bench::run(&args)?;
            true
        }
        Command::Index(args) => index_bench::run(&args)?,
    };
    anyhow::ensure!(ok, "a check failed (see the table)");
    Ok(())
}
