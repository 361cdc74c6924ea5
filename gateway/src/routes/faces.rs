//! `GET /images/{hash}/faces/{n}.jpg`: the thumbnail a worker kept of one face.

use poem_openapi::{ApiResponse, OpenApi, param::Path, payload::Binary};

use crate::{
    auth::{Caller, ReadScope},
    error::ApiError,
    failure::{self, Failure},
    params::{FaceFileParam, HashParam},
};

/// How long a browser may keep a thumbnail: short, since erasing the image removes it.
const CACHE_CONTROL: &str = "private, max-age=300";

#[derive(Debug, ApiResponse)]
pub enum Thumbnail {
    /// A JPEG of the face (96 × 96 pixels at most, 8 KiB at most).
    #[oai(status = 200, content_type = "image/jpeg")]
    Jpeg(
        Binary<Vec<u8>>,
        #[oai(header = "Cache-Control")] String,
        #[oai(header = "X-Content-Type-Options")] String,
    ),
}

/// Face thumbnails.
#[derive(Debug)]
pub struct FaceApi;

#[OpenApi]
impl FaceApi {
    /// A face's thumbnail
    ///
    /// The small JPEG a worker kept of face `n` (its place in the image's `faces`, from 0).
    /// 404 for an unknown image or face, and for every face when the workers keep no
    /// thumbnails (`FACEMATCH_FACE_THUMBNAILS=off`).
    #[oai(
        path = "/images/:hash/faces/:file",
        method = "get",
        operation_id = "getFaceThumbnail"
    )]
    async fn thumbnail(
        &self,
        caller: Caller<ReadScope>,
        /// The image's hash: 32 lowercase hex characters.
        hash: Path<HashParam>,
        /// The face's number followed by `.jpg`, such as `0.jpg`.
        file: Path<FaceFileParam>,
    ) -> Result<Thumbnail, Failure<{ failure::BY_HASH }>> {
        let hash = hash.0.0;
        let n = file.0.0;
        match caller.store.face_thumbnail(hash, n).await? {
            Some(jpeg) => Ok(Thumbnail::Jpeg(
                Binary(jpeg),
                CACHE_CONTROL.to_owned(),
                "nosniff".to_owned(),
            )),
            None => Err(
                ApiError::not_found(format!("image {hash} has no thumbnail of face {n}")).into(),
            ),
        }
    }
}
