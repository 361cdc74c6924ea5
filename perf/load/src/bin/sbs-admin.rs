//! Housekeeping for the side-by-side runs (see `facematch_load::admin`).
//!
//! `sbs-admin purge QUEUE` · `sbs-admin cleanup --amqp-prefix P --key-prefix K`

use clap::{Parser, Subcommand};
use facematch_load::admin;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drops every ready message of a queue.
    Purge { queue: String },
    /// Deletes a facematch run's exchanges, queues and Redis keys.
    Cleanup {
        #[arg(long)]
        amqp_prefix: String,
        #[arg(long)]
        key_prefix: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Purge { queue } => {
            let n = admin::purge(&args.amqp_url, &queue).await?;
            println!("purged {n} messages from {queue}");
        }
        Command::Cleanup {
            amqp_prefix,
            key_prefix,
        } => {
            let n =
                admin::cleanup(&args.amqp_url, &args.redis_url, &amqp_prefix, &key_prefix).await?;
            println!("deleted {amqp_prefix}* and {n} Redis keys under {key_prefix}");
        }
    }
    Ok(())
}
