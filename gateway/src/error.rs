//! The one error type of the HTTP API: every failure becomes
//! `{"error": {"code": "...", "message": "..."}}` with its status.

use poem::{IntoResponse, Response, http::StatusCode};
use poem_openapi::Object;

use facematch_core::store::StoreError;

/// The body of every error answer.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// The image concerned, when the answer is about one (`may_be_queued`).
    #[oai(skip_serializing_if_is_none)]
    pub hash: Option<String>,
    /// That image's state now (`pending` while its job may or may not be queued).
    #[oai(skip_serializing_if_is_none)]
    pub state: Option<String>,
}

/// What went wrong, for machines (`code`) and people (`message`).
#[derive(Debug, Clone, Object)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// An API failure with its HTTP status.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds to send as `Retry-After` (429 and 503 answers).
    pub retry_after: Option<u32>,
    /// The image concerned and its state, for an answer about one.
    pub image: Option<(String, &'static str)>,
    /// `WWW-Authenticate` to send (401 answers).
    pub challenge: Option<&'static str>,
    /// Close the connection after the answer (`Connection: close`), so a refused client
    /// does not keep holding a connection slot.
    pub close: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            image: None,
            challenge: None,
            close: false,
        }
    }

    /// 401 for a request without a usable key. The message is the same for an unknown, a
    /// revoked and a malformed key, so an answer never tells which keys exist.
    pub fn unauthorized(missing: bool) -> Self {
        let (message, challenge) = if missing {
            (
                "this route needs an API key: send `Authorization: Bearer <key>`",
                r#"Bearer realm="facematch""#,
            )
        } else {
            (
                "the API key is not valid: unknown, revoked or malformed",
                r#"Bearer realm="facematch", error="invalid_token""#,
            )
        };
        Self {
            challenge: Some(challenge),
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
        }
    }

    /// 409 for something that exists already.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 403 for a key without the route's scope.
    pub fn forbidden(scope: facematch_core::api_key::Scope) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this API key does not have the `{scope}` scope this route needs"),
        )
    }

    /// 429 for a client address that failed authentication too often.
    pub fn auth_throttled(retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failures",
                "too many requests with a missing or invalid API key from this address; wait                  before trying again",
            )
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 413 for an uploaded image over `FACEMATCH_MAX_BODY`.
    pub fn image_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the image is larger than the limit of {limit} bytes"),
        )
    }

    /// 413 for a JSON request body over its limit.
    pub fn json_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the JSON body is larger than the limit of {limit} bytes"),
        )
    }

    /// 408 for a body that came too slowly or took too long.
    pub fn body_timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", message)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    pub fn url_rejected(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "url_rejected", message)
    }

    pub fn busy() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "the gateway is at its in-flight limit; retry shortly",
            )
        }
    }

    /// 429 for a long-poll beyond the waiter pool (`FACEMATCH_MAX_WAITERS`, or its share per
    /// address); the connection is closed with the answer.
    pub fn too_many_waiters(why: impl std::fmt::Display) -> Self {
        Self {
            retry_after: Some(1),
            close: true,
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_waiters",
                format!("{why}; ask again without `wait`, or retry shortly"),
            )
        }
    }

    /// 429 when the memory budget for bodies and downloads is spent.
    pub fn memory_busy() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "the gateway's memory for request bodies is in use; retry shortly",
            )
        }
    }

    /// 429 when the client's address holds its share of that budget.
    pub fn memory_share_busy() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "this address holds its share of the gateway's memory for request bodies \
                 (FACEMATCH_MAX_BUFFERED_PER_ADDRESS); retry when its other uploads are done",
            )
        }
    }

    /// 503 for a job sent to the broker whose confirm did not come: it may be queued (and
    /// would then be processed with its names); a retry is safe.
    pub fn may_be_queued(
        hash: impl ToString,
        state: &'static str,
        why: impl std::fmt::Display,
    ) -> Self {
        Self {
            code: "may_be_queued",
            image: Some((hash.to_string(), state)),
            ..Self::unavailable(format!(
                "{why}; the image may or may not be queued: its names are recorded, and \
                 uploading it again is safe"
            ))
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(2),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }

    /// The JSON error for any status, with a generic code (used for poem's own errors).
    pub fn from_status(status: StatusCode, message: impl Into<String>) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::REQUEST_TIMEOUT => "timeout",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
            StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            s if s.is_server_error() => "internal",
            _ => "error",
        };
        Self::new(status, code, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "redis failure");
        match e {
            StoreError::Corrupt(_) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
            _ => Self::unavailable("the store (Redis) is unavailable; retry shortly"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        if let Some((hash, state)) = self.image {
            body["hash"] = hash.into();
            body["state"] = state.into();
        }
        let mut resp = Response::builder()
            .status(self.status)
            .content_type("application/json; charset=utf-8")
            .body(body.to_string());
        if let Some(challenge) = self.challenge {
            resp.headers_mut().insert(
                poem::http::header::WWW_AUTHENTICATE,
                poem::http::HeaderValue::from_static(challenge),
            );
        }
        if self.close {
            resp.headers_mut().insert(
                poem::http::header::CONNECTION,
                poem::http::HeaderValue::from_static("close"),
            );
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(
                poem::http::header::RETRY_AFTER,
                poem::http::HeaderValue::from(secs),
            );
        }
        resp
    }
}

impl From<ApiError> for poem::Error {
    fn from(e: ApiError) -> Self {
        poem::Error::from_response(e.into_response())
    }
}
