//! `/metrics` parses as Prometheus text and its counters move when an image is scanned.

mod common;

use common::{System, png};
use facematch_core::testing::parse_prometheus;

async fn scrape(env: &System) -> std::collections::HashMap<String, f64> {
    let resp = env.client.get("/metrics").send().await;
    assert_eq!(resp.0.status().as_u16(), 200);
    let text = resp.0.into_body().into_string().await.expect("body");
    parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[tokio::test]
async fn metrics_parse_and_move_with_a_scan() {
    let env = System::new("metrics").await;
    let scans = r#"facematch_gateway_requests_total{route="/scan/image/{filename}",method="POST",status="200"}"#;
    let confirmed = r#"facematch_gateway_publish_total{outcome="confirmed"}"#;
    let before = scrape(&env).await;
    let (status, _) = env.upload("m.png", png(42)).await;
    assert_eq!(status, 200);
    let after = scrape(&env).await;
    let get =
        |m: &std::collections::HashMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    assert!(get(&after, scans) >= get(&before, scans) + 1.0, "{after:?}");
    assert!(get(&after, confirmed) >= get(&before, confirmed) + 1.0);
    assert!(after.contains_key(
        r#"facematch_gateway_request_seconds_count{route="/scan/image/{filename}"}"#
    ));
    assert!(after.contains_key("facematch_gateway_in_flight"));
    env.cleanup().await;
}
