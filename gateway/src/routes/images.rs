//! `GET /images/{hash}`: an image's state, names and faces, with optional long-poll.

use std::time::Duration;

use facematch_core::store::{FaceRecord, ImageStatus};
use poem_openapi::{
    Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use super::matches::parse_hash;
use crate::{
    auth::{Caller, ReadScope},
    error::ApiError,
};

/// Longest long-poll accepted, in seconds.
pub const MAX_WAIT_SECS: u64 = 60;
const POLL_EVERY: Duration = Duration::from_millis(100);

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

/// Image status.
#[derive(Debug)]
pub struct ImageApi;

#[OpenApi]
impl ImageApi {
    /// Image status
    ///
    /// With `wait=SECONDS` (0 to 60), waits until the image is `done` or `failed`, or the
    /// time is up, then answers its current status.
    #[oai(path = "/images/:hash", method = "get", operation_id = "getImage")]
    async fn image(
        &self,
        caller: Caller<ReadScope>,
        /// The image's hash: 32 lowercase hex characters.
        #[oai(validator(pattern = "^[0-9a-f]{32}$"))]
        hash: Path<String>,
        /// Seconds to wait for a final state (0 to 60).
        #[oai(validator(minimum(value = "0"), maximum(value = "60")))]
        wait: Query<Option<u64>>,
    ) -> Result<Json<ImageDoc>, ApiError> {
        let hash = parse_hash(&hash)?;
        let wait = Duration::from_secs(wait.0.unwrap_or(0).min(MAX_WAIT_SECS));
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let status = caller.store.image_status(hash).await?;
            let Some(status) = status else {
                return Err(ApiError::not_found(format!("no image has hash {hash}")));
            };
            if status.state.is_final() || tokio::time::Instant::now() >= deadline {
                return Ok(Json(status.into()));
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}
