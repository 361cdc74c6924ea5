//! `POST /scan/image/{filename}` and `POST /scan/url`: hash, record and queue an image.

use facematch_core::{ImageHash, amqp::Source, store::Claim};
use poem::web::Data;
use poem_openapi::{Object, OpenApi, param::Path, payload::Json};
use serde::Deserialize;
use tracing::Instrument;

use crate::{
    auth::{Caller, ScanScope},
    enqueue::{Job, NotQueued, claim, enqueue_upload, publish_claimed, unconfirmed_answer},
    error::ApiError,
    extract::{AnyJson, ImageUpload, client_address},
    failure::{self, Failure},
    fetch::{FetchError, check_url},
    sniff::sniff,
    state::AppState,
};

/// Longest filename accepted, in characters.
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
    if name.chars().count() > MAX_FILENAME {
        return bad("the filename is longer than 255 characters");
    }
    if name.chars().any(char::is_control) {
        return bad("the filename contains control characters");
    }
    Ok(())
}

fn checked_image(bytes: &[u8], from_url: bool, max_pixels: u64) -> Result<&'static str, ApiError> {
    sniff(bytes, max_pixels).map(|s| s.mime).map_err(|e| {
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
    #[oai(
        path = "/scan/image/:filename",
        method = "post",
        operation_id = "scanImage"
    )]
    async fn scan_image(
        &self,
        state: Data<&AppState>,
        caller: Caller<ScanScope>,
        /// A label for the image, without control characters; names are not unique and may
        /// repeat across images.
        // No `pattern` validator: poem-openapi compiles its regex on every request (8 % of the
        // gateway's CPU under upload load); `check_filename` refuses control characters with
        // the same 400 `invalid_filename`.
        #[oai(validator(min_length = 1, max_length = 255))]
        filename: Path<String>,
        body: ImageUpload,
    ) -> Result<Json<ScanAnswer>, Failure<{ failure::UPLOAD }>> {
        check_filename(&filename)?;
        // `_held` keeps the scan slot and the body's memory reservation until the answer.
        let ImageUpload { bytes, held: _held } = body;
        let mime = checked_image(&bytes, false, state.max_image_pixels)?;
        let hash = ImageHash::of(&bytes);
        tracing::debug!(%hash, filename = %filename.0, size = bytes.len(), mime, "upload");
        let job = Job {
            hash,
            name: &filename,
            source: Source::Upload,
            mime,
            body: &bytes,
            epoch: caller.principal.epoch.as_deref(),
        };
        let store = &caller.store;
        // On success the filename is recorded already, with the claim or the confirm.
        match enqueue_upload(&state, store, job).await {
            Ok(()) => Ok(Json(ScanAnswer {
                hash: hash.to_string(),
            })),
            Err(NotQueued::Refused(e)) => Err(e.into()),
            Err(NotQueued::Unconfirmed(why)) => {
                store.record_file_name(&filename, hash).await?;
                Err(unconfirmed_answer(store, hash, why).await.into())
            }
        }
    }

    /// Scan an image by URL
    ///
    /// The gateway downloads the image (http/https, public addresses, size-limited). A URL
    /// already scanned answers its hash at once, without downloading again, unless its job
    /// must be queued again (see `POST /scan/image/{filename}`).
    #[oai(path = "/scan/url", method = "post", operation_id = "scanUrl")]
    async fn scan_url(
        &self,
        state: Data<&AppState>,
        request: &poem::Request,
        caller: Caller<ScanScope>,
        body: AnyJson<ScanUrlRequest>,
    ) -> Result<Json<ScanAnswer>, Failure<{ failure::URL_SCAN }>> {
        let store = &caller.store;
        // `_held` keeps the scan slot until the answer; the JSON's own bytes are gone.
        let AnyJson { value, held: _held } = body;
        let raw = value.url.trim().to_owned();
        let url = check_url(&raw, state.fetcher.config()).map_err(fetch_error)?;
        let key = url.as_str();
        let known = match store.hash_of_url(key).await? {
            Some(bound) => {
                let claim = claim(&state, store, bound).await?;
                if !claim.must_publish() {
                    tracing::debug!(hash = %bound, url = key, "url already scanned");
                    return Ok(Json(ScanAnswer {
                        hash: bound.to_string(),
                    }));
                }
                Some((bound, claim))
            }
            None => None,
        };
        let (bytes, _reservation) = state
            .fetcher
            .fetch(&url, state.budget.reservation(client_address(request)))
            .instrument(tracing::info_span!("url.fetch", url = key))
            .await
            .map_err(fetch_error)?;
        let mime = checked_image(&bytes, true, state.max_image_pixels)?;
        let hash = ImageHash::of(&bytes);
        let claim = match known {
            None => claim(&state, store, hash).await?,
            Some((bound, claim)) if bound == hash => claim,
            Some((bound, claim)) => {
                if claim == Claim::New {
                    let _ = store.release_claim(bound).await;
                }
                return Err(ApiError::url_rejected(format!(
                    "the url is bound to image {bound}, whose job must be queued again, but it \
                     now serves other bytes"
                ))
                .into());
            }
        };
        let job = Job {
            hash,
            name: key,
            source: Source::Url,
            mime,
            body: &bytes,
            epoch: caller.principal.epoch.as_deref(),
        };
        match publish_claimed(&state, store, claim, job).await {
            Ok(()) => {
                let bound = store.record_url(key, hash).await?;
                Ok(Json(ScanAnswer {
                    hash: bound.to_string(),
                }))
            }
            Err(NotQueued::Refused(e)) => Err(e.into()),
            Err(NotQueued::Unconfirmed(why)) => {
                store.record_url(key, hash).await?;
                Err(unconfirmed_answer(store, hash, why).await.into())
            }
        }
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
        FetchError::Busy => ApiError::memory_busy(),
    }
}

#[cfg(test)]
mod tests {
    use super::check_filename;

    #[test]
    fn filenames() {
        assert!(check_filename("a photo (1).jpg").is_ok());
        assert!(check_filename("été.png").is_ok());
        assert!(check_filename(&"é".repeat(255)).is_ok(), "255 characters");
        for bad in [
            "",
            ".",
            "..",
            "a\nb",
            "a\u{0}b",
            "a\u{85}b",
            &"x".repeat(256),
        ] {
            assert!(check_filename(bad).is_err(), "{bad:?}");
        }
    }
}
