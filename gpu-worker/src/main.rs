//! facematch worker binary: one clap subcommand per file under `cli/`.

mod cli;

use clap::{Parser, Subcommand};

/// facematch worker: batched face detection, embedding and matching.
#[derive(Debug, Parser)]
#[command(name = "gpu-worker", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    // The queue-consuming service (`serve`, to become the default) is added here.
    /// Print one JSON line per image: faces with score, box, landmarks and descriptor.
    Embed(cli::embed::EmbedArgs),
    /// Convert the face-api TFJS weights to the pinned `.safetensors` files (run by
    /// scripts/fetch-weights.sh).
    ConvertWeights(cli::convert_weights::ConvertWeightsArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Embed(args) => cli::embed::run(args),
        Command::ConvertWeights(args) => cli::convert_weights::run(args),
    }
}
