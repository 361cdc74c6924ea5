//! The documents stored in Redis and served by `GET /images/{hash}`.

use serde::{Deserialize, Serialize};

use crate::ImageHash;

/// Where an image is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageState {
    /// Claimed by a gateway whose publish is not confirmed yet.
    Pending,
    /// Confirmed by the broker; waiting for a worker.
    Queued,
    /// Faces stored and matched.
    Done,
    /// Failed (undecodable, too large, or dead-lettered); `error` says why.
    Failed,
}

impl ImageState {
    /// How the `error` of a `failed` image starts when the broker dead-lettered its job (its
    /// deliveries ran out, not its decode): a re-upload of such an image is queued again.
    pub const DEAD_LETTERED: &'static str = "dead-lettered:";

    /// The spelling stored in Redis.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Queued => "queued",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "queued" => Self::Queued,
            "done" => Self::Done,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    /// `done` or `failed`: nothing more will happen to the image.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

/// An axis-aligned box in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

/// One detected face as stored in `faces:{hash}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceRecord {
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: FaceBox,
    /// 68 points in image pixels.
    pub landmarks: Vec<[f32; 2]>,
    /// 128-d descriptor; omitted from the public status document.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub descriptor: Vec<f32>,
}

/// `GET /images/{hash}`: what is known about one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageStatus {
    pub hash: ImageHash,
    pub state: ImageState,
    pub names: Vec<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Number of faces once `done`.
    pub face_count: Option<u32>,
    pub faces: Vec<FaceRecord>,
    pub model: Option<String>,
    pub error: Option<String>,
    /// Unix milliseconds.
    pub created_at: Option<u64>,
    /// Unix milliseconds.
    pub updated_at: Option<u64>,
}

/// One image that shares a face with the asked one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchDetail {
    pub hash: ImageHash,
    /// Smallest Euclidean distance between any face of the two images.
    pub distance: f32,
    /// Its names, sorted: the first [`super::NAMES_PER_MATCH`] of them.
    pub names: Vec<String>,
    /// How many names it has in all.
    pub name_count: u64,
}
