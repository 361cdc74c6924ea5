//! The gateway's Prometheus metrics: requests by route and status, latency, publish confirms
//! and failures, scans in flight, bytes buffered. One registry per process, like Prometheus'
//! default one. Every label value comes from a fixed set (route templates, the standard
//! methods, outcomes), so no client can add series.

use std::sync::OnceLock;

use facematch_core::metrics::{MetricSet, SECONDS_BUCKETS};
use poem::{Response, handler};
use tokio::sync::OwnedSemaphorePermit;

/// The process's registry.
pub fn registry() -> &'static MetricSet {
    static SET: OnceLock<MetricSet> = OnceLock::new();
    SET.get_or_init(MetricSet::default)
}

/// The route template of a path, so labels stay few (hashes and names are not labels).
pub fn route_label(path: &str) -> &'static str {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["scan", "image", _] => "/scan/image/{filename}",
        ["scan", "url"] => "/scan/url",
        ["match", _] => "/match/{hash}",
        ["match", _, "details"] => "/match/{hash}/details",
        ["images", _] => "/images/{hash}",
        ["healthz"] => "/healthz",
        ["readyz"] => "/readyz",
        ["metrics"] => "/metrics",
        ["openapi.json"] => "/openapi.json",
        ["docs", ..] => "/docs",
        _ => "other",
    }
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

/// Records one answered request.
pub fn request(method: &str, path: &str, status: u16, seconds: f64) {
    let route = route_label(path);
    let method = method_label(method);
    let status = status.to_string();
    registry().inc(
        "facematch_gateway_requests_total",
        "HTTP requests answered, by route, method and status.",
        &[("route", route), ("method", method), ("status", &status)],
        1.0,
    );
    registry().observe(
        "facematch_gateway_request_seconds",
        "HTTP request latency, by route.",
        &[("route", route)],
        seconds,
        SECONDS_BUCKETS,
    );
}

/// Records a publish outcome: `confirmed` or `failed`.
pub fn publish(outcome: &str) {
    registry().inc(
        "facematch_gateway_publish_total",
        "Jobs published to the broker, by outcome.",
        &[("outcome", outcome)],
        1.0,
    );
}

/// Moves the gauge of request and download bytes held in memory.
pub fn buffered(by: f64) {
    registry().add(
        "facematch_gateway_buffered_bytes",
        "Request body and download bytes reserved in memory now.",
        &[],
        by,
    );
}

/// A scan slot: counted in `facematch_gateway_in_flight` while held.
#[derive(Debug)]
pub struct InFlight(#[allow(dead_code)] OwnedSemaphorePermit);

impl InFlight {
    pub fn new(permit: OwnedSemaphorePermit) -> Self {
        in_flight(1.0);
        Self(permit)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        in_flight(-1.0);
    }
}

fn in_flight(by: f64) {
    registry().add(
        "facematch_gateway_in_flight",
        "Scans being handled now.",
        &[],
        by,
    );
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
    use super::{method_label, route_label};

    #[test]
    fn labels_are_route_templates() {
        assert_eq!(route_label("/scan/image/a b.jpg"), "/scan/image/{filename}");
        assert_eq!(route_label("/match/0123/details"), "/match/{hash}/details");
        assert_eq!(route_label("/images/abc"), "/images/{hash}");
        assert_eq!(route_label("/etc/passwd"), "other");
    }

    #[test]
    fn labels_are_standard_methods() {
        assert_eq!(method_label("POST"), "POST");
        assert_eq!(method_label("FROBNICATE"), "other");
        assert_eq!(method_label("get"), "other");
    }
}
