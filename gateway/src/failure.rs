//! Which error statuses each operation can answer, for its OpenAPI description.
//!
//! A handler returns `Result<T, Failure<STATUSES>>`, where `STATUSES` is a set of the bits
//! below: the spec lists exactly those statuses for the operation (`/readyz` documents 503,
//! not 413). The set covers what the handler's own body answers *and* what its extractors
//! answer before it runs (the key check, the body reader, poem's parameter parsing), which is
//! why the sets are built from the parts an operation has ([`KEYED`], [`PARAMS`], [`BODY`]...).
//! In debug builds an answer outside the set fails an assertion, so the test suite keeps the
//! sets honest.

use poem::{IntoResponse, Response};
use poem_openapi::{
    ApiResponse,
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::Type,
};

use crate::error::{ApiError, ErrorBody};

pub const BAD_REQUEST: u16 = 1 << 0;
pub const UNAUTHORIZED: u16 = 1 << 1;
pub const FORBIDDEN: u16 = 1 << 2;
pub const NOT_FOUND: u16 = 1 << 3;
pub const REQUEST_TIMEOUT: u16 = 1 << 4;
pub const CONFLICT: u16 = 1 << 5;
pub const PAYLOAD_TOO_LARGE: u16 = 1 << 6;
pub const UNSUPPORTED_MEDIA_TYPE: u16 = 1 << 7;
pub const UNPROCESSABLE: u16 = 1 << 8;
pub const TOO_MANY_REQUESTS: u16 = 1 << 9;
pub const INTERNAL: u16 = 1 << 10;
pub const UNAVAILABLE: u16 = 1 << 11;
pub const URI_TOO_LONG: u16 = 1 << 12;

/// A route behind an API key: no key (401), the wrong scope (403), an address that failed too
/// often (429).
pub const KEYED: u16 = UNAUTHORIZED | FORBIDDEN | TOO_MANY_REQUESTS;
/// A route that reads or writes Redis: unreachable (503), corrupt data (500).
pub const STORE: u16 = UNAVAILABLE | INTERNAL;
/// A route with path or query parameters: poem validates them (400), and the server refuses
/// an address longer than it reads (414, before any route is chosen).
pub const PARAMS: u16 = BAD_REQUEST | URI_TOO_LONG;
/// A route that reads a request body: malformed or empty (400), too slow (408), too large
/// (413), no scan slot or body memory free (429).
pub const BODY: u16 = BAD_REQUEST | REQUEST_TIMEOUT | PAYLOAD_TOO_LARGE | TOO_MANY_REQUESTS;

/// An image named by its hash, looked up in the key's collection.
pub const BY_HASH: u16 = KEYED | STORE | PARAMS | NOT_FOUND;
/// An upload: a body, an image check (415), a publish to the broker (503).
pub const UPLOAD: u16 = KEYED | STORE | PARAMS | BODY | UNSUPPORTED_MEDIA_TYPE;
/// A URL scan: an upload whose bytes are fetched, so the URL may be refused (422).
pub const URL_SCAN: u16 = UPLOAD | UNPROCESSABLE;
/// An admin listing.
pub const LISTING: u16 = KEYED | STORE;
/// An admin creation from a JSON body.
pub const CREATION: u16 = KEYED | STORE | BODY;
/// An admin deletion by name or id.
pub const DELETION: u16 = KEYED | STORE | PARAMS | NOT_FOUND;
/// Readiness: a dependency is down.
pub const READINESS: u16 = UNAVAILABLE;

/// Every documented status: its bit, its code and what it means.
const DOCUMENTED: [(u16, u16, &str); 13] = [
    (
        BAD_REQUEST,
        400,
        "Malformed input: bad JSON, URL, filename or hash, or an empty body",
    ),
    (
        UNAUTHORIZED,
        401,
        "No API key, or an unknown, revoked or malformed one (with `WWW-Authenticate: Bearer`)",
    ),
    (
        FORBIDDEN,
        403,
        "The API key lacks the scope this route needs",
    ),
    (NOT_FOUND, 404, "Unknown image, face, key or collection"),
    (
        REQUEST_TIMEOUT,
        408,
        "The body came too slowly (FACEMATCH_MIN_BODY_RATE) or took too long (FACEMATCH_BODY_TIMEOUT)",
    ),
    (CONFLICT, 409, "The collection exists already"),
    (
        URI_TOO_LONG,
        414,
        "The request line is over 64 KiB: answered by the HTTP parser, with no body",
    ),
    (
        PAYLOAD_TOO_LARGE,
        413,
        "The body is over its limit: FACEMATCH_MAX_BODY for an image, 64 KiB for JSON",
    ),
    (
        UNSUPPORTED_MEDIA_TYPE,
        415,
        "Not a JPEG/PNG/WebP/GIF/BMP image, or absurd dimensions",
    ),
    (
        UNPROCESSABLE,
        422,
        "URL rejected: scheme, port, address, size or content type",
    ),
    (
        TOO_MANY_REQUESTS,
        429,
        "The gateway's in-flight or memory limit is reached, or this address failed \
         authentication too often; see Retry-After",
    ),
    (INTERNAL, 500, "Stored data is corrupt"),
    (
        UNAVAILABLE,
        503,
        "The broker or Redis is unavailable, or the broker did not confirm in time \
         (`may_be_queued`, with `hash` and `state`); see Retry-After",
    ),
];

/// The bit of an HTTP status, if it is a documented one.
pub fn bit_of(status: u16) -> Option<u16> {
    DOCUMENTED
        .iter()
        .find(|&&(_, code, _)| code == status)
        .map(|&(bit, _, _)| bit)
}

/// An [`ApiError`] answered by an operation that documents the statuses in `STATUSES`.
#[derive(Debug)]
pub struct Failure<const STATUSES: u16>(pub ApiError);

impl<const STATUSES: u16> From<ApiError> for Failure<STATUSES> {
    fn from(e: ApiError) -> Self {
        debug_assert!(
            bit_of(e.status.as_u16()).is_some_and(|bit| STATUSES & bit != 0),
            "status {} ({}) is not documented for this operation",
            e.status,
            e.code
        );
        Self(e)
    }
}

impl<const STATUSES: u16> From<facematch_core::store::StoreError> for Failure<STATUSES> {
    fn from(e: facematch_core::store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl<const STATUSES: u16> IntoResponse for Failure<STATUSES> {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl<const STATUSES: u16> From<Failure<STATUSES>> for poem::Error {
    fn from(f: Failure<STATUSES>) -> Self {
        f.0.into()
    }
}

impl<const STATUSES: u16> ApiResponse for Failure<STATUSES> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: DOCUMENTED
                .iter()
                .filter(|&&(bit, _, _)| STATUSES & bit != 0)
                .map(|&(_, status, description)| MetaResponse {
                    description,
                    status: Some(status),
                    status_range: None,
                    // hyper answers 414 itself, before the application, with no body.
                    content: if status == 414 {
                        Vec::new()
                    } else {
                        vec![MetaMediaType {
                            content_type: "application/json; charset=utf-8",
                            schema: ErrorBody::schema_ref(),
                        }]
                    },
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        ErrorBody::register(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bit_is_one_status() {
        let all = DOCUMENTED.iter().fold(0u16, |acc, &(bit, _, _)| {
            assert_eq!(acc & bit, 0, "bit {bit:#b} used twice");
            acc | bit
        });
        assert_eq!(all.count_ones() as usize, DOCUMENTED.len());
        assert_eq!(bit_of(413), Some(PAYLOAD_TOO_LARGE));
        assert_eq!(bit_of(418), None);
    }

    #[test]
    fn an_operation_lists_only_its_statuses() {
        let listed: Vec<u16> = Failure::<READINESS>::meta()
            .responses
            .iter()
            .filter_map(|r| r.status)
            .collect();
        assert_eq!(listed, [503]);
    }
}
