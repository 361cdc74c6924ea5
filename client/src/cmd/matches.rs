//! `facematch match HASH`: the names of every other image sharing a face with HASH, one per
//! line; `--details` adds each match's hash and best face distance.

use clap::Args;
use facematch_core::ImageHash;

use crate::{
    exit::Outcome,
    http::{ApiError, Gateway, GatewayArgs},
};

/// `facematch match` arguments.
#[derive(Debug, Args)]
pub struct MatchArgs {
    /// The image's hash (32 hex characters, as printed by `facematch scan`).
    pub hash: ImageHash,

    /// List each matching image with its hash, best face distance and names, closest first
    /// (`GET /match/{hash}/details`).
    #[arg(long)]
    pub details: bool,

    /// Print the gateway's JSON list instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `facematch match`. An unknown hash has no matches (the gateway answers `[]`).
pub async fn run(gateway: &GatewayArgs, args: MatchArgs) -> anyhow::Result<Outcome> {
    let gateway = Gateway::connect(gateway)?;
    match print_matches(&gateway, &args).await {
        Ok(()) => Ok(Outcome::Ok),
        Err(e) if !e.is_connection() => {
            eprintln!("facematch: {}: {e}", args.hash);
            Ok(Outcome::SomeFailed)
        }
        Err(e) => Err(e.into()),
    }
}

async fn print_matches(gateway: &Gateway, args: &MatchArgs) -> Result<(), ApiError> {
    if args.details {
        let details = gateway.match_details(args.hash).await?;
        if args.json {
            println!("{}", json(&details));
        }
        for m in details.iter().filter(|_| !args.json) {
            println!("{}  {:.4}  {}", m.hash, m.distance, m.names.join(", "));
        }
    } else {
        let names = gateway.matches(args.hash).await?;
        if args.json {
            println!("{}", json(&names));
        } else {
            for name in names {
                println!("{name}");
            }
        }
    }
    Ok(())
}

/// Values that came from JSON always serialise back.
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("a value parsed from JSON serialises; this is a bug")
}
