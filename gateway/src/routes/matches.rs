//! `GET /match/{hash}`: the names of every other image sharing a face with this one.

use facematch_core::{
    ImageHash,
    store::{FacePair, MatchDetail},
};
use poem_openapi::{
    Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    auth::{Caller, ReadScope},
    failure::{self, Failure},
    params::HashParam,
    state::AppState,
};

/// One matched image, with the evidence.
#[derive(Debug, Object)]
pub struct MatchEntry {
    /// The matched image's hash.
    pub hash: String,
    /// Smallest Euclidean distance between a face of each image (≤ the threshold).
    pub distance: f32,
    /// The matched image's filenames and URLs, sorted: the first 100 of them.
    pub names: Vec<String>,
    /// How many names the matched image has in all.
    pub name_count: u64,
    /// With `faces=true`: which face of this image matched which face of the matched one,
    /// closest first (the pairs within the match threshold).
    #[oai(skip_serializing_if_is_empty)]
    pub faces: Vec<FacePairDoc>,
}

/// A face of the asked image and a face of the matched image.
#[derive(Debug, Object)]
pub struct FacePairDoc {
    /// The face's number in the asked image (its place in `faces` of `GET /images/{hash}`).
    pub face: u32,
    /// The face's number in the matched image.
    pub other_face: u32,
    /// Euclidean distance between the two faces' descriptors.
    pub distance: f32,
}

impl From<FacePair> for FacePairDoc {
    fn from(p: FacePair) -> Self {
        Self {
            face: p.face,
            other_face: p.other_face,
            distance: p.distance,
        }
    }
}

impl From<MatchDetail> for MatchEntry {
    fn from(d: MatchDetail) -> Self {
        Self {
            hash: d.hash.to_string(),
            distance: d.distance,
            names: d.names,
            name_count: d.name_count,
            faces: Vec::new(),
        }
    }
}

/// Names answered by `GET /match/{hash}` unless asked otherwise.
pub const DEFAULT_NAMES: u32 = 1000;
/// Matched images per page of `GET /match/{hash}/details` unless asked otherwise.
pub const DEFAULT_PAGE: u32 = 100;

/// Matches.
#[derive(Debug)]
pub struct MatchApi;

#[OpenApi]
impl MatchApi {
    /// Names of matching images
    ///
    /// Every name or URL of every other image that shares at least one face with this one,
    /// sorted. `[]` for an unknown hash, an image without faces, or one still being processed.
    /// At most `limit` names (default 1000): those of the closest images; page through every
    /// match with `GET /match/{hash}/details`.
    #[oai(path = "/match/:hash", method = "get", operation_id = "getMatches")]
    async fn matches(
        &self,
        caller: Caller<ReadScope>,
        /// The image's hash: 32 lowercase hex characters.
        hash: Path<HashParam>,
        /// Most names answered (1 to 10000, default 1000).
        #[oai(validator(minimum(value = "1"), maximum(value = "10000")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<Vec<String>>, Failure<{ failure::BY_HASH }>> {
        let hash = hash.0.0;
        let limit = limit.0.unwrap_or(DEFAULT_NAMES) as usize;
        Ok(Json(caller.store.matched_names(hash, limit).await?))
    }

    /// Matching images with details
    ///
    /// Each matching image with its hash, best face distance and names (the first 100, with
    /// `name_count`), closest first; with `faces=true`, also which faces matched. A page of at
    /// most `limit` images (default 100) from the `offset`-th: fewer than `limit` means the
    /// last page.
    #[oai(
        path = "/match/:hash/details",
        method = "get",
        operation_id = "getMatchDetails"
    )]
    async fn match_details(
        &self,
        state: poem::web::Data<&AppState>,
        caller: Caller<ReadScope>,
        /// The image's hash: 32 lowercase hex characters.
        hash: Path<HashParam>,
        /// Also list the face pairs behind each match.
        faces: Query<Option<bool>>,
        /// Most images answered (1 to 1000, default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
        /// Matched images to skip, closest first (default 0).
        #[oai(validator(minimum(value = "0"), maximum(value = "100000000")))]
        offset: Query<Option<u32>>,
    ) -> Result<Json<Vec<MatchEntry>>, Failure<{ failure::BY_HASH }>> {
        let hash = hash.0.0;
        let limit = limit.0.unwrap_or(DEFAULT_PAGE) as usize;
        let offset = offset.0.unwrap_or(0) as usize;
        // Closest first: the matches are kept sorted by distance.
        let details = caller.store.match_details(hash, offset, limit).await?;
        let others: Vec<ImageHash> = details.iter().map(|d| d.hash).collect();
        let mut entries: Vec<MatchEntry> = details.into_iter().map(MatchEntry::from).collect();
        if faces.0.unwrap_or(false) {
            let pairs = caller
                .store
                .face_pairs(hash, &others, state.match_threshold)
                .await?;
            for (entry, pairs) in entries.iter_mut().zip(pairs) {
                entry.faces = pairs.into_iter().map(FacePairDoc::from).collect();
            }
        }
        Ok(Json(entries))
    }
}
