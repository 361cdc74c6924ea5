//! `GET /match/{hash}`: the names of every other image sharing a face with this one.

use facematch_core::{ImageHash, store::MatchDetail};
use poem_openapi::{Object, OpenApi, param::Path, payload::Json};

use crate::{
    auth::{Caller, ReadScope},
    error::ApiError,
};

/// One matched image, with the evidence.
#[derive(Debug, Object)]
pub struct MatchEntry {
    /// The matched image's hash.
    pub hash: String,
    /// Smallest Euclidean distance between a face of each image (≤ the threshold).
    pub distance: f32,
    /// Every filename / URL of the matched image.
    pub names: Vec<String>,
}

impl From<MatchDetail> for MatchEntry {
    fn from(d: MatchDetail) -> Self {
        Self {
            hash: d.hash.to_string(),
            distance: d.distance,
            names: d.names,
        }
    }
}

/// Matches.
#[derive(Debug)]
pub struct MatchApi;

pub(crate) fn parse_hash(raw: &str) -> Result<ImageHash, ApiError> {
    raw.parse().map_err(|e: facematch_core::ParseHashError| {
        ApiError::bad_request("invalid_hash", e.to_string())
    })
}

#[OpenApi]
impl MatchApi {
    /// Names of matching images
    ///
    /// Every name or URL of every other image that shares at least one face with this one,
    /// sorted. `[]` for an unknown hash, an image without faces, or one still being processed.
    #[oai(path = "/match/:hash", method = "get", operation_id = "getMatches")]
    async fn matches(
        &self,
        caller: Caller<ReadScope>,
        /// The image's hash: 32 lowercase hex characters.
        #[oai(validator(pattern = "^[0-9a-f]{32}$"))]
        hash: Path<String>,
    ) -> Result<Json<Vec<String>>, ApiError> {
        let hash = parse_hash(&hash)?;
        Ok(Json(caller.store.matched_names(hash).await?))
    }

    /// Matching images with details
    ///
    /// Each matching image with its hash, best face distance and names, closest first.
    #[oai(
        path = "/match/:hash/details",
        method = "get",
        operation_id = "getMatchDetails"
    )]
    async fn match_details(
        &self,
        caller: Caller<ReadScope>,
        /// The image's hash: 32 lowercase hex characters.
        #[oai(validator(pattern = "^[0-9a-f]{32}$"))]
        hash: Path<String>,
    ) -> Result<Json<Vec<MatchEntry>>, ApiError> {
        let hash = parse_hash(&hash)?;
        let mut details = caller.store.match_details(hash).await?;
        details.sort_by(|a, b| a.distance.total_cmp(&b.distance));
        Ok(Json(details.into_iter().map(MatchEntry::from).collect()))
    }
}
