//! `GET /images/{hash}/faces/{n}.jpg`: the thumbnail a worker kept of one face.

use poem_openapi::{ApiResponse, OpenApi, param::Path, payload::Binary};

use crate::{
    auth::{Caller, ReadScope},
    error::ApiError,
    failure::{self, Failure},
    hash_param::HashParam,
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

/// The face number in `{n}.jpg`.
fn face_number(file: &str) -> Result<u32, ApiError> {
    file.strip_suffix(".jpg")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_parameter",
                "a face is named by its number and .jpg, such as 0.jpg",
            )
        })
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
        #[oai(validator(pattern = "^(0|[1-9][0-9]{0,3})\\.jpg$"))]
        file: Path<String>,
    ) -> Result<Thumbnail, Failure<{ failure::BY_HASH }>> {
        let hash = hash.0.0;
        let n = face_number(&file)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_face_file_is_its_number_and_jpg() {
        assert_eq!(face_number("0.jpg").ok(), Some(0));
        assert_eq!(face_number("12.jpg").ok(), Some(12));
        for bad in ["x.jpg", "1.png", "1", "-1.jpg", ".jpg"] {
            assert!(face_number(bad).is_err(), "{bad}");
        }
    }
}
