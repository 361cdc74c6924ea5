//! `facematch forget HASH|FILE|URL...`: erase images from the key's collection (scope
//! `delete`). A file is hashed here (its bytes never leave the machine); a URL is looked up by
//! the gateway.

use std::path::Path;

use clap::Args;
use facematch_core::ImageHash;
use serde::Deserialize;

use crate::{
    exit::Outcome,
    http::{ApiError, Gateway, GatewayArgs},
};

/// `facematch forget` arguments.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Image hashes, image files (hashed locally) or scanned URLs.
    #[arg(required = true)]
    pub items: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Erased {
    hash: String,
    names: u64,
    urls: u64,
    matches: u64,
    faces: u64,
}

#[derive(Debug, Deserialize)]
struct UrlBinding {
    hash: ImageHash,
}

/// Runs `facematch forget`: exit 1 when some item is unknown or refused.
pub async fn run(gateway: &GatewayArgs, args: ForgetArgs) -> anyhow::Result<Outcome> {
    let gateway = Gateway::connect(gateway)?;
    let mut outcome = Outcome::Ok;
    for item in &args.items {
        match forget(&gateway, item).await {
            Ok(e) => println!(
                "{}  forgotten  {} names, {} urls, {} matches, {} faces",
                e.hash, e.names, e.urls, e.matches, e.faces
            ),
            Err(Failure::Api(e)) if e.is_connection() => return Err(e.into()),
            Err(e) => {
                eprintln!("facematch: {item}: {e}");
                outcome = outcome.and(Outcome::SomeFailed);
            }
        }
    }
    Ok(outcome)
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("cannot read it: {0}")]
    Unreadable(std::io::Error),
}

async fn forget(gateway: &Gateway, item: &str) -> Result<Erased, Failure> {
    let hash = if let Ok(hash) = item.parse::<ImageHash>() {
        hash
    } else if item.starts_with("http://") || item.starts_with("https://") {
        let mut url = gateway.url(&["urls"]);
        url.query_pairs_mut().append_pair("url", item);
        gateway.get_url::<UrlBinding>(url).await?.hash
    } else {
        let bytes = tokio::fs::read(Path::new(item))
            .await
            .map_err(Failure::Unreadable)?;
        ImageHash::of(&bytes)
    };
    Ok(gateway
        .delete_json::<Erased>(&["images", &hash.to_string()])
        .await?)
}
