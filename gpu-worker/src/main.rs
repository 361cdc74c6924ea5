//! facematch worker binary: one clap subcommand per file under `cli/`.

mod cli;

use clap::{Parser, Subcommand};

/// facematch worker: batched face detection, embedding and matching.
#[derive(Debug, Parser)]
#[command(name = "gpu-worker", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// `serve`'s settings when no subcommand is given.
    #[command(flatten)]
    serve: gpu_worker::service::ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Consume scan jobs, detect and embed faces in batches, store faces and matches
    /// (the default).
    Serve(gpu_worker::service::ServeArgs),
    /// Print one JSON line per image: faces with score, box, landmarks and descriptor.
    Embed(cli::embed::EmbedArgs),
    /// Convert the face-api TFJS weights to the pinned `.safetensors` files (run by
    /// scripts/fetch-weights.sh).
    ConvertWeights(cli::convert_weights::ConvertWeightsArgs),
}

fn main() -> anyhow::Result<()> {
    // Before any other thread starts (see the module); cheap and harmless on CUDA too.
    gpu_worker::memory::reuse_freed_memory();
    let cli = Cli::parse();
    match cli.command {
        None => cli::serve::run(cli.serve),
        Some(Command::Serve(args)) => cli::serve::run(args),
        Some(command) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                .init();
            match command {
                Command::Embed(args) => cli::embed::run(args),
                Command::ConvertWeights(args) => cli::convert_weights::run(args),
                Command::Serve(_) => unreachable!("handled above"),
            }
        }
    }
}
