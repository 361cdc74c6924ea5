//! The seed's REST contract on the real RabbitMQ and Redis.

mod common;

use std::collections::HashMap;

use common::{
    System, header,
    http_server::{Answer, HttpServer},
    png,
};

#[tokio::test]
async fn same_bytes_under_two_names_share_a_hash_and_queue_once() {
    let env = System::new("dedup").await;
    let (s1, a) = env.upload("first.png", png(1)).await;
    let (s2, b) = env.upload("second.png", png(1)).await;
    assert_eq!((s1, s2), (200, 200), "{a} {b}");
    let hash = a["hash"].as_str().expect("hash").to_owned();
    assert_eq!(hash.len(), 32);
    assert_eq!(b["hash"], a["hash"]);

    let (_, status) = env.get(&format!("/images/{hash}")).await;
    assert_eq!(
        status["names"],
        serde_json::json!(["first.png", "second.png"])
    );
    assert_eq!(status["state"], "queued");
    assert_eq!(env.queue_len().await, 1, "the same bytes are queued once");

    // Different bytes under a known name: a new hash, and the name follows the new upload.
    let (s3, c) = env.upload("first.png", png(2)).await;
    assert_eq!(s3, 200);
    assert_ne!(c["hash"], a["hash"]);
    let (_, old) = env.get(&format!("/images/{hash}")).await;
    assert_eq!(old["names"], serde_json::json!(["second.png"]));
    assert_eq!(env.queue_len().await, 2);
    env.cleanup().await;
}

#[tokio::test]
async fn queued_message_carries_hash_name_and_traceparent() {
    let env = System::new("message").await;
    let bytes = png(7);
    let (status, body) = env.upload("a%20photo.png", bytes.clone()).await;
    assert_eq!(status, 200, "{body}");
    let messages = env.drain_queue().await;
    assert_eq!(messages.len(), 1);
    let (props, payload) = &messages[0];
    assert_eq!(payload, &bytes);
    assert_eq!(
        props.message_id().as_ref().map(|m| m.to_string()),
        body["hash"].as_str().map(str::to_owned)
    );
    assert_eq!(header(props, "name").as_deref(), Some("a photo.png"));
    assert_eq!(header(props, "source").as_deref(), Some("upload"));
    assert_eq!(props.delivery_mode(), &Some(2), "persistent");
    assert_eq!(
        props
            .content_type()
            .as_ref()
            .map(|c| c.to_string())
            .as_deref(),
        Some("image/png")
    );
    let traceparent = header(props, "traceparent").expect("traceparent header");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[1].len(), 32);
    assert_ne!(parts[1], "0".repeat(32));
    env.cleanup().await;
}

#[tokio::test]
async fn a_url_is_downloaded_once() {
    let env = System::new("url-once").await;
    let server = HttpServer::start(HashMap::from([(
        "/face.png".to_owned(),
        Answer::ok(png(3), "image/png"),
    )]))
    .await;
    let url = server.url("/face.png");
    let (s1, a) = env.scan_url(&url).await;
    assert_eq!(s1, 200, "{a}");
    let (s2, b) = env.scan_url(&url).await;
    assert_eq!(s2, 200, "{b}");
    assert_eq!(a["hash"], b["hash"]);
    assert_eq!(
        server.hits("/face.png"),
        1,
        "the second scan must not download"
    );
    assert_eq!(env.queue_len().await, 1);
    let messages = env.drain_queue().await;
    assert_eq!(header(&messages[0].0, "source").as_deref(), Some("url"));
    assert_eq!(
        header(&messages[0].0, "name").as_deref(),
        Some(url.as_str())
    );
    env.cleanup().await;
}

#[tokio::test]
async fn match_of_unknown_is_empty_and_malformed_hash_is_400() {
    let env = System::new("match").await;
    let (status, body) = env.get(&format!("/match/{}", "0".repeat(32))).await;
    assert_eq!((status, body), (200, serde_json::json!([])));
    let (status, body) = env.get("/match/not-a-hash").await;
    assert_eq!(status, 400);
    assert_eq!(common::error_code(&body), "invalid_hash");
    let (status, _) = env.get(&format!("/images/{}", "0".repeat(32))).await;
    assert_eq!(status, 404);
    assert!(env.redis_keys().await.is_empty());
    env.cleanup().await;
}

#[tokio::test]
async fn match_lists_names_of_matched_images() {
    let env = System::new("matchnames").await;
    let (_, a) = env.upload("a.png", png(10)).await;
    let (_, b) = env.upload("b.png", png(11)).await;
    env.upload("b-copy.png", png(11)).await;
    let (ha, hb) = (
        a["hash"].as_str().expect("a"),
        b["hash"].as_str().expect("b"),
    );
    // What a worker writes for a match (both directions).
    let mut conn = env.store.conn().await.expect("redis");
    let keys = env.store.keys();
    let _: () = facematch_core::store::redis::pipe()
        .zadd(keys.matches(ha.parse().expect("h")), hb, 0.3)
        .zadd(keys.matches(hb.parse().expect("h")), ha, 0.3)
        .query_async(&mut conn)
        .await
        .expect("zadd");
    let (_, names) = env.get(&format!("/match/{ha}")).await;
    assert_eq!(names, serde_json::json!(["b-copy.png", "b.png"]));
    let (_, names) = env.get(&format!("/match/{hb}")).await;
    assert_eq!(names, serde_json::json!(["a.png"]));
    let (_, details) = env.get(&format!("/match/{ha}/details")).await;
    assert_eq!(details[0]["hash"], hb);
    assert!((details[0]["distance"].as_f64().expect("distance") - 0.3).abs() < 1e-6);
    env.cleanup().await;
}

/// Each operation documents the statuses it can answer, and only those.
fn assert_statuses_fit_their_operations(spec: &serde_json::Value) {
    let statuses = |path: &str, method: &str| -> Vec<String> {
        let responses = spec["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} has responses"));
        responses.keys().cloned().collect()
    };
    assert_eq!(statuses("/healthz", "get"), ["200"]);
    assert_eq!(statuses("/readyz", "get"), ["200", "503"]);
    let upload = statuses("/scan/image/{filename}", "post");
    for s in ["400", "401", "403", "408", "413", "415", "429", "503"] {
        assert!(
            upload.contains(&s.to_owned()),
            "upload documents {s}: {upload:?}"
        );
    }
    for s in ["404", "409", "422"] {
        assert!(
            !upload.contains(&s.to_owned()),
            "upload does not answer {s}"
        );
    }
    let paths = spec["paths"].as_object().expect("paths");
    for (path, methods) in paths {
        for (method, op) in methods.as_object().expect("methods") {
            let documented = statuses(path, method);
            let has = |s: &str| documented.iter().any(|d| d == s);
            if op.get("security").is_some() {
                assert!(has("401") && has("403"), "{method} {path}: {documented:?}");
            }
            if op.get("parameters").is_some() {
                assert!(
                    has("400"),
                    "{method} {path} validates parameters: {documented:?}"
                );
            }
            if op.get("requestBody").is_some() {
                assert!(
                    has("408") && has("413"),
                    "{method} {path} reads a body: {documented:?}"
                );
            } else {
                assert!(!has("413"), "{method} {path} has no body: {documented:?}");
            }
            assert_eq!(
                has("409"),
                path == "/collections" && method == "post",
                "{method} {path}: {documented:?}"
            );
        }
    }
}

#[tokio::test]
async fn health_readiness_and_openapi() {
    let env = System::new("health").await;
    assert_eq!(env.get("/healthz").await.0, 200);
    assert_eq!(env.get("/readyz").await.0, 200);
    let (status, spec) = env.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        spec["paths"]["/scan/image/{filename}"]["post"].is_object(),
        "{spec}"
    );
    assert!(spec["paths"]["/match/{hash}"]["get"].is_object());
    assert_statuses_fit_their_operations(&spec);
    assert_eq!(
        env.client.get("/docs/").send().await.0.status().as_u16(),
        200
    );
    env.cleanup().await;
}

#[tokio::test]
async fn long_poll_returns_when_the_time_is_up() {
    let env = System::new("wait").await;
    let (_, a) = env.upload("w.png", png(20)).await;
    let started = std::time::Instant::now();
    let (status, doc) = env
        .get(&format!(
            "/images/{}?wait=1",
            a["hash"].as_str().expect("h")
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(doc["state"], "queued");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    env.cleanup().await;
}
