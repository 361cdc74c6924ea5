//! `POST /scan/image/{filename}` and `POST /scan/url`: hash, record and queue an image.

use facematch_core::{ImageHash, amqp::Source};
use poem::web::Data;
use poem_openapi::{Object, OpenApi, param::Path, payload::Json};
use serde::Deserialize;
use tracing::Instrument;

use crate::{
    enqueue::enqueue,
    error::ApiError,
    extract::{AnyJson, ImageUpload},
    fetch::{FetchError, check_url},
    metrics::InFlight,
    sniff::sniff,
    state::AppState,
};

/// Longest filename accepted, in bytes.
pub const MAX_FILENAME: usize = 255;

/// The answer to a scan: the image's identity.
#[derive(Debug, Object)]
pub struct ScanAnswer {
    /// XXH3-128 of the image bytes, 32 lowercase hex characters.
    pub hash: String,
}

/// `POST /scan/url` body.
#[derive(Debug, Object, Deserialize)]
pub struct ScanUrlRequest {
    /// An http(s) URL of a JPEG, PNG, WebP, GIF or BMP image.
    pub url: String,
}

/// Scanning images.
#[derive(Debug)]
pub struct ScanApi;

fn check_filename(name: &str) -> Result<(), ApiError> {
    let bad = |why: &str| Err(ApiError::bad_request("invalid_filename", why.to_owned()));
    if name.is_empty() || name == "." || name == ".." {
        return bad("the filename is empty");
    }
    if name.len() > MAX_FILENAME {
        return bad("the filename is longer than 255 bytes");
    }
    if name.chars().any(char::is_control) {
        return bad("the filename contains control characters");
    }
    Ok(())
}

fn permit(state: &AppState) -> Result<InFlight, ApiError> {
    state
        .in_flight
        .clone()
        .try_acquire_owned()
        .map(InFlight::new)
        .map_err(|_| ApiError::busy())
}

fn checked_image(bytes: &[u8], from_url: bool) -> Result<&'static str, ApiError> {
    sniff(bytes).map(|s| s.mime).map_err(|e| {
        if from_url {
            ApiError::url_rejected(format!("the url's content is refused: {e}"))
        } else {
            ApiError::unsupported(e.to_string())
        }
    })
}

#[OpenApi]
impl ScanApi {
    /// Scan an uploaded image
    ///
    /// The body is the image's raw bytes, whatever the `Content-Type`. Answers once the job is
    /// durably queued (broker confirm) or the same bytes are already known; the filename is
    /// recorded either way and then points at this image.
    #[oai(path = "/scan/image/:filename", method = "post")]
    async fn scan_image(
        &self,
        state: Data<&AppState>,
        /// A label for the image; names are not unique and may repeat across images.
        filename: Path<String>,
        body: ImageUpload,
    ) -> Result<Json<ScanAnswer>, ApiError> {
        check_filename(&filename)?;
        let _permit = permit(&state)?;
        let bytes = body.0;
        let mime = checked_image(&bytes, false)?;
        let hash = ImageHash::of(&bytes);
        tracing::debug!(%hash, filename = %filename.0, size = bytes.len(), mime, "upload");
        enqueue(&state, hash, &filename, Source::Upload, mime, &bytes).await?;
        state.store.record_name(&filename, hash).await?;
        Ok(Json(ScanAnswer {
            hash: hash.to_string(),
        }))
    }

    /// Scan an image by URL
    ///
    /// The gateway downloads the image (http/https, public addresses, size-limited). A URL
    /// already scanned answers its hash at once, without downloading again.
    #[oai(path = "/scan/url", method = "post")]
    async fn scan_url(
        &self,
        state: Data<&AppState>,
        body: AnyJson<ScanUrlRequest>,
    ) -> Result<Json<ScanAnswer>, ApiError> {
        let raw = body.0.url.trim().to_owned();
        let url = check_url(&raw, state.fetcher.config()).map_err(fetch_error)?;
        let key = url.as_str();
        if let Some(hash) = state.store.hash_of_name(key).await? {
            tracing::debug!(%hash, url = key, "url already scanned");
            return Ok(Json(ScanAnswer {
                hash: hash.to_string(),
            }));
        }
        let _permit = permit(&state)?;
        let bytes = state
            .fetcher
            .fetch(&url)
            .instrument(tracing::info_span!("url.fetch", url = key))
            .await
            .map_err(fetch_error)?;
        let mime = checked_image(&bytes, true)?;
        let hash = ImageHash::of(&bytes);
        enqueue(&state, hash, key, Source::Url, mime, &bytes).await?;
        let bound = state.store.record_url(key, hash).await?;
        Ok(Json(ScanAnswer {
            hash: bound.to_string(),
        }))
    }
}

fn fetch_error(e: FetchError) -> ApiError {
    match e {
        FetchError::Invalid(m) => ApiError::bad_request("invalid_url", m),
        FetchError::Rejected(m) => ApiError::url_rejected(m),
        FetchError::TooLarge(_) => ApiError::new(
            poem::http::StatusCode::UNPROCESSABLE_ENTITY,
            "url_too_large",
            e.to_string(),
        ),
        FetchError::Failed(m) => ApiError::new(
            poem::http::StatusCode::UNPROCESSABLE_ENTITY,
            "url_fetch_failed",
            m,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::check_filename;

    #[test]
    fn filenames() {
        assert!(check_filename("a photo (1).jpg").is_ok());
        assert!(check_filename("été.png").is_ok());
        for bad in ["", ".", "..", "a\nb", "a\u{0}b", &"x".repeat(256)] {
            assert!(check_filename(bad).is_err(), "{bad:?}");
        }
    }
}
