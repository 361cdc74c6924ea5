//! Request-body extractors that accept any `Content-Type` (the seed's clients send raw bytes
//! with none, or form encoding). Each takes a scan slot (429 when none is free) *before* it
//! reads a byte, then reads the body under the gateway's limits ([`crate::body`]); the slot
//! and the body's memory reservation are held until the request is answered.

use bytes::Bytes;
use poem::{Request, RequestBody, http::StatusCode};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef, Registry},
    types::Type,
};
use serde::de::DeserializeOwned;

use crate::{
    body::{BodyKind, read_body},
    error::ApiError,
    limits::Reservation,
    metrics::InFlight,
    state::AppState,
};

/// Largest JSON request accepted.
pub const MAX_JSON: usize = 64 * 1024;

/// What a request holds of the gateway until it is answered.
#[derive(Debug)]
pub struct Held {
    _slot: InFlight,
    /// The memory reservation covering the body.
    _bytes: Reservation,
}

fn state(request: &Request) -> poem::Result<&AppState> {
    request
        .data::<AppState>()
        .ok_or_else(|| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))
}

/// The client's IP address, when the request came over TCP.
pub fn client_address(request: &Request) -> Option<std::net::IpAddr> {
    match &request.remote_addr().0 {
        poem::Addr::SocketAddr(addr) => Some(addr.ip()),
        _ => None,
    }
}

/// Takes a scan slot, then reads the body under the limits.
async fn admit_and_read(
    request: &Request,
    body: &mut RequestBody,
    kind: BodyKind,
    limit: usize,
) -> poem::Result<(Bytes, Held)> {
    let state = state(request)?;
    let slot = state
        .in_flight
        .clone()
        .try_acquire_owned()
        .map(InFlight::new)
        .map_err(|_| ApiError::busy())?;
    let declared = request
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (bytes, reservation) = read_body(
        body.take().unwrap_or_default(),
        declared,
        kind,
        limit,
        &state.limits,
        state.budget.reservation(client_address(request)),
    )
    .await?;
    Ok((
        bytes,
        Held {
            _slot: slot,
            _bytes: reservation,
        },
    ))
}

/// The raw bytes of an uploaded image, at most `FACEMATCH_MAX_BODY`.
#[derive(Debug)]
pub struct ImageUpload {
    pub bytes: Bytes,
    pub held: Held,
}

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
                    // An empty body is refused (400 empty_body).
                    min_length: Some(1),
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
        let limit = state(request)?.max_body;
        let (bytes, held) = admit_and_read(request, body, BodyKind::Image, limit).await?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request("empty_body", "the request body is empty").into());
        }
        Ok(Self { bytes, held })
    }
}

/// A JSON object body parsed whatever its `Content-Type`, with a JSON error on bad input
/// (an array, string or number at the top is refused, whatever it holds).
#[derive(Debug)]
pub struct AnyJson<T> {
    pub value: T,
    pub held: Held,
}

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
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let (bytes, held) = admit_and_read(request, body, BodyKind::Json, MAX_JSON).await?;
        let invalid = |why: String| ApiError::bad_request("invalid_json", why);
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("the body is not valid JSON: {e}")))?;
        if !json.is_object() {
            return Err(invalid("the body must be a JSON object".into()).into());
        }
        let value = serde_json::from_value(json)
            .map_err(|e| invalid(format!("the body is not the expected object: {e}")))?;
        Ok(Self { value, held })
    }
}
