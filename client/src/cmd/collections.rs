//! `facematch collections`: create, list and delete collections (an admin key's work).

use clap::{Args, Subcommand};
use serde::Deserialize;

use crate::{
    exit::Outcome,
    http::{Gateway, GatewayArgs},
};

/// `facematch collections` arguments.
#[derive(Debug, Args)]
pub struct CollectionsArgs {
    #[command(subcommand)]
    pub command: CollectionsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CollectionsCommand {
    /// Make a collection: an independent face space with its own keys.
    Create {
        /// 1 to 64 characters of a-z, 0-9, '_' and '-'.
        name: String,
    },
    /// List the collections.
    List,
    /// Delete a collection: every image, name, face and match in it, and its keys.
    Delete { name: String },
}

#[derive(Debug, Deserialize)]
struct CollectionInfo {
    name: String,
    created_at: u64,
}

#[derive(Debug, Deserialize)]
struct Deleted {
    name: String,
    images: u64,
    api_keys: u64,
}

/// Runs `facematch collections`.
pub async fn run(gateway: &GatewayArgs, args: CollectionsArgs) -> anyhow::Result<Outcome> {
    let gateway = Gateway::connect(gateway)?;
    let result = match args.command {
        CollectionsCommand::Create { name } => gateway
            .post_json::<CollectionInfo>(&["collections"], &serde_json::json!({ "name": name }))
            .await
            .map(|c| println!("{}", c.name)),
        CollectionsCommand::List => gateway
            .get_json::<Vec<CollectionInfo>>(&["collections"])
            .await
            .map(|all| {
                for c in all {
                    println!("{}  {}", c.name, crate::output::utc(c.created_at));
                }
            }),
        CollectionsCommand::Delete { name } => gateway
            .delete_json::<Deleted>(&["collections", &name])
            .await
            .map(|d| {
                eprintln!(
                    "facematch: deleted collection {}: {} images erased, {} keys revoked",
                    d.name, d.images, d.api_keys
                );
            }),
    };
    Outcome::of_request(result)
}
