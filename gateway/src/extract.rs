//! Request-body extractors that accept any `Content-Type` (the seed's clients send raw bytes
//! with none, or form encoding) and read at most the configured number of bytes.

use bytes::Bytes;
use poem::{Body, Request, RequestBody, error::ReadBodyError, http::StatusCode};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef, Registry},
    types::Type,
};
use serde::de::DeserializeOwned;

use crate::{error::ApiError, state::AppState};

/// Largest JSON request accepted.
const MAX_JSON: usize = 64 * 1024;

async fn read_limited(body: &mut RequestBody, limit: usize) -> Result<Bytes, ApiError> {
    let body: Body = body.take().unwrap_or_default();
    body.into_bytes_limit(limit).await.map_err(|e| match e {
        ReadBodyError::PayloadTooLarge => ApiError::too_large(limit),
        other => ApiError::bad_request("bad_body", format!("cannot read the body: {other}")),
    })
}

/// The raw bytes of an uploaded image, at most `FACEMATCH_MAX_BODY`.
#[derive(Debug)]
pub struct ImageUpload(pub Bytes);

impl<'a> ApiExtractor<'a> for ImageUpload {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some("The image's raw bytes (JPEG, PNG, WebP, GIF or BMP)"),
            content: vec![MetaMediaType {
                content_type: "application/octet-stream",
                schema: MetaSchemaRef::Inline(Box::new(MetaSchema {
                    format: Some("binary"),
                    ..MetaSchema::new("string")
                })),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let limit = request
            .data::<AppState>()
            .map(|s| s.max_body)
            .ok_or_else(|| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
        let bytes = read_limited(body, limit).await?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request("empty_body", "the request body is empty").into());
        }
        Ok(Self(bytes))
    }
}

/// A JSON body parsed whatever its `Content-Type`, with a JSON error on bad input.
#[derive(Debug)]
pub struct AnyJson<T>(pub T);

impl<'a, T: DeserializeOwned + Type + Send> ApiExtractor<'a> for AnyJson<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: T::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        _request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bytes = read_limited(body, MAX_JSON).await?;
        serde_json::from_slice(&bytes).map(Self).map_err(|e| {
            ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}")).into()
        })
    }
}
