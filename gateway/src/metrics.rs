//! The gateway's Prometheus metrics: requests by route and status, latency, publish confirms
//! and failures, scans in flight, bytes buffered — recorded with the `metrics` crate into one
//! registry per process, like Prometheus' default one. Every label value comes from a fixed
//! set (the route templates poem's router matched, the standard methods, outcomes), so no
//! client can add series.

use std::sync::{Arc, OnceLock};

use facematch_core::metrics::{
    Registry, SECONDS_BUCKETS, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};
use poem::{Response, handler};
use tokio::sync::OwnedSemaphorePermit;

const REQUESTS: &str = "facematch_gateway_requests_total";
const REQUEST_SECONDS: &str = "facematch_gateway_request_seconds";
const PUBLISH: &str = "facematch_gateway_publish_total";
const BUFFERED_BYTES: &str = "facematch_gateway_buffered_bytes";
const IN_FLIGHT: &str = "facematch_gateway_in_flight";
const AUTH: &str = "facematch_gateway_auth_total";
const ERASED: &str = "facematch_gateway_erased_images_total";
const ERASED_FACES: &str = "facematch_gateway_erased_faces_total";

/// The process's registry.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        Registry::new(&[(REQUEST_SECONDS, SECONDS_BUCKETS)], || {
            describe_counter!(
                REQUESTS,
                "HTTP requests answered, by route, method and status."
            );
            describe_histogram!(REQUEST_SECONDS, "HTTP request latency, by route.");
            describe_counter!(PUBLISH, "Jobs published to the broker, by outcome.");
            describe_gauge!(
                BUFFERED_BYTES,
                "Request body and download bytes reserved in memory now."
            );
            describe_gauge!(IN_FLIGHT, "Scans being handled now.");
            describe_counter!(ERASED, "Images erased (DELETE /images/{hash}).");
            describe_counter!(ERASED_FACES, "Faces erased with them.");
            describe_counter!(
                AUTH,
                "API key checks, by outcome: ok, missing, malformed, unknown (or revoked), \
                 forbidden (scope), throttled (the address failed too often)."
            );
        })
    })
}

/// The method as a label: one of the standard methods, or `other`.
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}

/// Records one answered request; `route` is the template the router matched
/// ([`crate::route::RouteTable::template`]), `other` when none did.
pub fn request(method: &str, route: Arc<str>, status: u16, seconds: f64) {
    let method = method_label(method);
    registry().record(|| {
        counter!(REQUESTS, "route" => Arc::clone(&route), "method" => method, "status" => status.to_string())
            .increment(1);
        histogram!(REQUEST_SECONDS, "route" => route).record(seconds);
    });
}

/// Records a publish outcome: `confirmed`, `unconfirmed` or `failed`.
pub fn publish(outcome: &'static str) {
    registry().record(|| counter!(PUBLISH, "outcome" => outcome).increment(1));
}

/// Records one erased image and its faces.
pub fn erased(faces: u64) {
    registry().record(|| {
        counter!(ERASED).increment(1);
        counter!(ERASED_FACES).increment(faces);
    });
}

/// Records one API key check's outcome.
pub fn auth(outcome: &'static str) {
    registry().record(|| counter!(AUTH, "outcome" => outcome).increment(1));
}

/// Moves the gauge of request and download bytes held in memory.
pub fn buffered(by: f64) {
    registry().record(|| gauge!(BUFFERED_BYTES).increment(by));
}

/// A scan slot: counted in `facematch_gateway_in_flight` while held.
#[derive(Debug)]
pub struct InFlight(#[allow(dead_code)] OwnedSemaphorePermit);

impl InFlight {
    pub fn new(permit: OwnedSemaphorePermit) -> Self {
        registry().record(|| gauge!(IN_FLIGHT).increment(1.0));
        Self(permit)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        registry().record(|| gauge!(IN_FLIGHT).decrement(1.0));
    }
}

/// `GET /metrics`: Prometheus text.
#[handler]
pub fn render() -> Response {
    Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(registry().render())
}

#[cfg(test)]
mod tests {
    use super::method_label;

    #[test]
    fn labels_are_standard_methods() {
        assert_eq!(method_label("POST"), "POST");
        assert_eq!(method_label("FROBNICATE"), "other");
        assert_eq!(method_label("get"), "other");
    }
}
