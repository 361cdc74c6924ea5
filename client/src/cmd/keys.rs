//! `facematch keys`: make, list and revoke API keys (an admin key's work), and `keys generate`,
//! which makes a key locally for `FACEMATCH_ADMIN_KEY_FILE` without asking any gateway.

use clap::{Args, Subcommand};
use facematch_core::api_key::{Scopes, generate_key};
use serde::Deserialize;

use crate::{
    exit::Outcome,
    http::{Gateway, GatewayArgs},
};

/// `facematch keys` arguments.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key for one collection; prints the key alone on standard output (it is shown
    /// only this once).
    Create {
        /// The collection the key acts in.
        #[arg(long, default_value = "default")]
        collection: String,
        /// Comma-separated: scan, read, delete, admin.
        #[arg(long, value_parser = parse_scopes)]
        scopes: Scopes,
    },
    /// List every key: id, collection, scopes, created, last used (never the keys).
    List {
        /// Print the gateway's JSON list instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id; every gateway refuses it within a second.
    Revoke {
        /// The key's id (`key_...`), as `keys list` shows it.
        id: String,
    },
    /// Print a new random key without asking any gateway: the bootstrap admin key to put in
    /// the file FACEMATCH_ADMIN_KEY_FILE names.
    Generate,
}

fn parse_scopes(s: &str) -> Result<Scopes, String> {
    let scopes: Scopes = s
        .parse()
        .map_err(|e: facematch_core::api_key::UnknownScope| e.to_string())?;
    if scopes.is_empty() {
        return Err("give at least one scope: scan, read, delete or admin".into());
    }
    Ok(scopes)
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct KeyInfo {
    id: String,
    collection: String,
    scopes: Vec<String>,
    created_at: u64,
    last_used_at: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct NewKey {
    key: String,
    id: String,
}

/// Runs `facematch keys`.
pub async fn run(gateway: &GatewayArgs, args: KeysArgs) -> anyhow::Result<Outcome> {
    if let KeysCommand::Generate = args.command {
        println!("{}", generate_key());
        return Ok(Outcome::Ok);
    }
    let gateway = Gateway::connect(gateway)?;
    let result = match args.command {
        KeysCommand::Create { collection, scopes } => {
            let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
            let body = serde_json::json!({ "collection": collection, "scopes": scopes });
            gateway
                .post_json::<NewKey>(&["keys"], &body)
                .await
                .map(|made| {
                    eprintln!(
                        "facematch: made key {} for collection {collection}",
                        made.id
                    );
                    println!("{}", made.key);
                })
        }
        KeysCommand::List { json } => {
            gateway
                .get_json::<Vec<KeyInfo>>(&["keys"])
                .await
                .map(|keys| {
                    if json {
                        println!("{}", serde_json::to_string(&keys).unwrap_or_default());
                        return;
                    }
                    println!(
                        "{:<20}  {:<20}  {:<24}  {:<20}  last used",
                        "id", "collection", "scopes", "created"
                    );
                    for k in keys {
                        println!(
                            "{:<20}  {:<20}  {:<24}  {:<20}  {}",
                            k.id,
                            k.collection,
                            k.scopes.join(","),
                            crate::output::utc(k.created_at),
                            k.last_used_at
                                .map_or_else(|| "never".into(), crate::output::utc)
                        );
                    }
                })
        }
        KeysCommand::Revoke { id } => {
            gateway
                .delete_json::<KeyInfo>(&["keys", &id])
                .await
                .map(|k| {
                    eprintln!(
                        "facematch: revoked key {} of collection {}",
                        k.id, k.collection
                    )
                })
        }
        KeysCommand::Generate => Ok(()),
    };
    Outcome::of_request(result)
}
