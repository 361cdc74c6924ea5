//! `GET /images/{hash}`: an image's state, names and faces, with optional long-poll.

use std::time::Duration;

use facematch_core::store::{FaceRecord, ImageStatus};
use poem_openapi::{
    Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    auth::{Caller, DeleteScope, ReadScope},
    error::ApiError,
    extract::client_address,
    failure::{self, Failure},
    params::HashParam,
};

/// Longest long-poll accepted, in seconds.
pub const MAX_WAIT_SECS: u64 = 60;

/// A box in image pixels.
#[derive(Debug, Object)]
pub struct BoxDoc {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

/// One detected face.
#[derive(Debug, Object)]
pub struct FaceDoc {
    /// Detector confidence.
    pub score: f32,
    #[oai(rename = "box")]
    pub bbox: BoxDoc,
    /// 68 `[x, y]` points in image pixels.
    pub landmarks: Vec<Vec<f32>>,
}

/// What is known about one image. Fields without a value are left out, never `null`.
#[derive(Debug, Object)]
pub struct ImageDoc {
    pub hash: String,
    /// `pending` (being queued), `queued`, `done` or `failed`.
    pub state: String,
    /// Every filename / URL of this image.
    pub names: Vec<String>,
    #[oai(skip_serializing_if_is_none)]
    pub width: Option<u32>,
    #[oai(skip_serializing_if_is_none)]
    pub height: Option<u32>,
    /// Number of faces, once `done`.
    #[oai(skip_serializing_if_is_none)]
    pub face_count: Option<u32>,
    pub faces: Vec<FaceDoc>,
    /// Which models produced the faces.
    #[oai(skip_serializing_if_is_none)]
    pub model: Option<String>,
    /// Why processing failed, when `failed`.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    /// Unix milliseconds.
    #[oai(skip_serializing_if_is_none)]
    pub created_at: Option<u64>,
    /// Unix milliseconds.
    #[oai(skip_serializing_if_is_none)]
    pub updated_at: Option<u64>,
}

impl From<FaceRecord> for FaceDoc {
    fn from(f: FaceRecord) -> Self {
        Self {
            score: f.score,
            bbox: BoxDoc {
                x: f.bbox.x,
                y: f.bbox.y,
                width: f.bbox.width,
                height: f.bbox.height,
            },
            landmarks: f.landmarks.iter().map(|p| p.to_vec()).collect(),
        }
    }
}

impl From<ImageStatus> for ImageDoc {
    fn from(s: ImageStatus) -> Self {
        Self {
            hash: s.hash.to_string(),
            state: s.state.as_str().to_owned(),
            names: s.names,
            width: s.width,
            height: s.height,
            face_count: s.face_count,
            faces: s.faces.into_iter().map(FaceDoc::from).collect(),
            model: s.model,
            error: s.error,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// What `DELETE /images/{hash}` removed.
#[derive(Debug, Object)]
pub struct ImageErased {
    pub hash: String,
    /// Filenames that pointed at the image.
    pub names: u64,
    /// URLs bound to it (each may be scanned afresh).
    pub urls: u64,
    /// Images it was matched with (each lost its entry for it).
    pub matches: u64,
    /// Faces (descriptors) removed from the face log.
    pub faces: u64,
}

/// `GET /urls?url=`: the image a scanned URL is bound to.
#[derive(Debug, Object)]
pub struct UrlBinding {
    pub url: String,
    pub hash: String,
}

/// Image status and erasure.
#[derive(Debug)]
pub struct ImageApi;

#[OpenApi]
impl ImageApi {
    /// Image status
    ///
    /// With `wait=SECONDS` (0 to 60), waits until the image is `done` or `failed`, or the
    /// time is up, then answers its current status. Long-polls are a bounded pool
    /// (`FACEMATCH_MAX_WAITERS`, `FACEMATCH_MAX_WAITERS_PER_ADDRESS`): beyond it the answer is
    /// 429 `too_many_waiters` at once, and the connection is closed.
    #[oai(path = "/images/:hash", method = "get", operation_id = "getImage")]
    async fn image(
        &self,
        state: poem::web::Data<&crate::state::AppState>,
        request: &poem::Request,
        caller: Caller<ReadScope>,
        /// The image's hash: 32 lowercase hex characters.
        hash: Path<HashParam>,
        /// Seconds to wait for a final state (0 to 60).
        #[oai(validator(minimum(value = "0"), maximum(value = "60")))]
        wait: Query<Option<u64>>,
    ) -> Result<Json<ImageDoc>, Failure<{ failure::BY_HASH }>> {
        let hash = hash.0.0;
        let unknown = || ApiError::not_found(format!("no image has hash {hash}"));
        let wait = Duration::from_secs(wait.0.unwrap_or(0).min(MAX_WAIT_SECS));
        if wait.is_zero() {
            let status = caller.store.image_status(hash).await?.ok_or_else(unknown)?;
            return Ok(Json(status.into()));
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut waiting = state
            .waiters
            .enter(client_address(request), caller.collection(), hash)
            .map_err(ApiError::too_many_waiters)?;
        loop {
            let status = waiting.status().await?.ok_or_else(unknown)?;
            if status.state.is_final() || tokio::time::Instant::now() >= deadline {
                return Ok(Json(status.into()));
            }
            waiting.next_wake(deadline).await;
        }
    }

    /// Forget an image
    ///
    /// Removes the image from the key's collection: its record, filenames, URLs (which may
    /// then be scanned afresh), faces and descriptors, and every match entry pointing at it,
    /// both ways; every worker drops its faces from its index. A job of the image still queued
    /// or running writes nothing. Uploading the same bytes again is a new scan.
    #[oai(
        path = "/images/:hash",
        method = "delete",
        operation_id = "deleteImage"
    )]
    async fn delete_image(
        &self,
        caller: Caller<DeleteScope>,
        /// The image's hash: 32 lowercase hex characters.
        hash: Path<HashParam>,
    ) -> Result<Json<ImageErased>, Failure<{ failure::BY_HASH }>> {
        let hash = hash.0.0;
        let Some(erased) = caller.store.erase_image(hash).await? else {
            return Err(ApiError::not_found(format!("no image has hash {hash}")).into());
        };
        crate::metrics::erased(erased.faces);
        tracing::info!(target: "gateway::audit", key_id = caller.key_id(), collection = %caller.collection(), %hash, names = erased.names, urls = erased.urls, matches = erased.matches, faces = erased.faces, "image erased");
        Ok(Json(ImageErased {
            hash: hash.to_string(),
            names: erased.names,
            urls: erased.urls,
            matches: erased.matches,
            faces: erased.faces,
        }))
    }

    /// The image of a URL
    ///
    /// The hash a URL scanned in the key's collection is bound to (to forget it, say).
    #[oai(path = "/urls", method = "get", operation_id = "getUrl")]
    async fn url(
        &self,
        state: poem::web::Data<&crate::state::AppState>,
        caller: Caller<ReadScope>,
        /// The URL as it was scanned.
        #[oai(validator(max_length = 8192))]
        url: Query<String>,
    ) -> Result<Json<UrlBinding>, Failure<{ failure::BY_HASH }>> {
        // Spelled as a scan records it (normalised); a URL a scan would refuse is unknown.
        let key = crate::fetch::check_url(url.0.trim(), state.fetcher.config())
            .map(|u| u.to_string())
            .map_err(|_| ApiError::not_found("no image is bound to this URL"))?;
        match caller.store.hash_of_url(&key).await? {
            Some(hash) => Ok(Json(UrlBinding {
                url: key,
                hash: hash.to_string(),
            })),
            None => Err(ApiError::not_found("no image is bound to this URL").into()),
        }
    }
}
