//! API keys on the real Redis and RabbitMQ: every route of the OpenAPI spec needs one (the
//! spec is iterated, so a route added later is covered), scopes are enforced, keys are never
//! stored, guessing is braked, and a revocation reaches another gateway process within a second.

mod common;

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{System, error_code, png};
use facematch_core::api_key::generate_key;
use poem::http::Method;

/// Routes that stay open: liveness and readiness probes, the spec and its docs.
const OPEN: [&str; 2] = ["/healthz", "/readyz"];

/// A concrete path for a spec template (`/match/{hash}` → `/match/00…0`).
fn concrete(template: &str) -> String {
    template
        .replace("{hash}", &"0".repeat(32))
        .replace("{filename}", "x.png")
        .replace("{file}", "0.jpg")
        .replace("{id}", "key_0000000000000000")
        .replace("{name}", "no-such-collection")
}

/// Every (method, template) of the spec, and whether it declares the bearer scheme.
async fn operations(env: &System) -> Vec<(Method, String, bool)> {
    let spec = env.get_json("/openapi.json").await;
    assert_eq!(
        spec["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer",
        "the spec declares the bearer scheme"
    );
    let mut out = Vec::new();
    for (template, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearerAuth").is_some()));
            out.push((method, template.clone(), secured));
        }
    }
    assert!(out.len() >= 12, "the spec lists the API: {out:?}");
    out
}

#[tokio::test]
async fn every_api_route_in_the_spec_refuses_a_missing_unknown_or_revoked_key() {
    let (env, admin) = System::secured("auth-routes").await;
    let revoked = env
        .create_key(&admin, "default", &["scan", "read", "delete", "admin"])
        .await;
    let answer = env
        .send_as(
            Some(&admin),
            Method::DELETE,
            &format!("/keys/{}", revoked.id),
            vec![],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let unknown = generate_key();

    for (method, template, secured) in operations(&env).await {
        let path = concrete(&template);
        if OPEN.contains(&template.as_str()) {
            assert!(!secured, "{template} stays open");
            let answer = env.send_as(None, method.clone(), &path, vec![]).await;
            assert_ne!(answer.status, 401, "{method} {template} is open");
            continue;
        }
        assert!(
            secured,
            "{method} {template} declares bearerAuth in the spec"
        );
        for (what, key) in [
            ("no key", None),
            ("an unknown key", Some(unknown.as_str())),
            ("a revoked key", Some(revoked.key.as_str())),
            ("a malformed key", Some("fmk_short")),
        ] {
            let answer = env
                .send_as(key, method.clone(), &path, b"{}".to_vec())
                .await;
            assert_eq!(
                answer.status, 401,
                "{method} {template} with {what}: {}",
                answer.body
            );
            assert_eq!(error_code(&answer.body), "unauthorized");
            let challenge = answer.headers["www-authenticate"].to_str().expect("ascii");
            assert!(challenge.starts_with("Bearer"), "{challenge}");
            let text = answer.body.to_string();
            for secret in [unknown.as_str(), revoked.key.as_str()] {
                assert!(!text.contains(secret), "an answer never repeats a key");
            }
        }
    }
    env.cleanup().await;
}

#[tokio::test]
async fn a_key_without_the_routes_scope_is_forbidden() {
    let (env, admin) = System::secured("auth-scopes").await;
    let scan_only = env.create_key(&admin, "default", &["scan"]).await;
    let read_only = env.create_key(&admin, "default", &["read"]).await;

    let upload = env.upload_as(&scan_only.key, "a.png", png(1)).await;
    assert_eq!(upload.status, 200, "{}", upload.body);
    let hash = upload.body["hash"].as_str().expect("hash").to_owned();

    for (key, method, path) in [
        (&scan_only.key, Method::GET, format!("/match/{hash}")),
        (&scan_only.key, Method::GET, format!("/images/{hash}")),
        (
            &scan_only.key,
            Method::GET,
            format!("/images/{hash}/faces/0.jpg"),
        ),
        (
            &scan_only.key,
            Method::GET,
            format!("/match/{hash}/details?faces=true"),
        ),
        (&read_only.key, Method::POST, "/scan/image/b.png".to_owned()),
        (&read_only.key, Method::POST, "/scan/url".to_owned()),
        (&read_only.key, Method::GET, "/keys".to_owned()),
        (&read_only.key, Method::POST, "/collections".to_owned()),
    ] {
        let answer = env.send_as(Some(key), method.clone(), &path, png(2)).await;
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
        assert_eq!(error_code(&answer.body), "forbidden");
    }
    let read = env.get_as(&read_only.key, &format!("/images/{hash}")).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(
        env.queue_len().await,
        1,
        "only the scan key's upload was queued"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn keys_are_listed_without_the_key_and_redis_never_holds_one() {
    let (env, admin) = System::secured("auth-stored").await;
    env.create_collection(&admin, "team-a").await;
    let a = env.create_key(&admin, "team-a", &["scan", "read"]).await;
    let b = env.create_key(&admin, "default", &["read"]).await;
    assert!(a.key.starts_with("fmk_") && a.key.len() == 68, "{}", a.key);
    // Use one, so its last use is recorded.
    let used = env.upload_as(&a.key, "x.png", png(3)).await;
    assert_eq!(used.status, 200);

    let listed = env.get_as(&admin, "/keys").await;
    assert_eq!(listed.status, 200);
    let text = listed.body.to_string();
    assert!(
        !text.contains(&a.key) && !text.contains(&b.key),
        "a list never shows a key"
    );
    let entry = listed
        .body
        .as_array()
        .expect("list")
        .iter()
        .find(|k| k["id"] == a.id.as_str());
    let entry = entry.expect("the new key is listed");
    assert_eq!(entry["collection"], "team-a");
    assert_eq!(entry["scopes"], serde_json::json!(["scan", "read"]));
    assert!(entry["created_at"].as_u64().is_some());

    // Every key under the prefix, whatever its type, read whole.
    let dump = env.redis_dump().await;
    assert!(dump.iter().any(|(n, _)| n.contains("apikey:")), "{dump:?}");
    for (name, value) in &dump {
        let text = format!("{name} {value}");
        for key in [&a.key, &b.key, &admin] {
            assert!(
                !text.contains(&key[4..]),
                "{name} holds a key in plain text"
            );
        }
    }
    env.cleanup().await;
}

#[tokio::test]
async fn an_address_that_keeps_failing_is_braked_and_counted() {
    let (env, admin) = System::secured("auth-brake").await;
    let mut env = env;
    let base = format!("http://{}", env.serve().await);
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let resp = http
            .get(format!("{base}/match/{}", "0".repeat(32)))
            .bearer_auth(generate_key())
            .send()
            .await
            .expect("gateway");
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(&statuses[..20], &[401; 20], "{statuses:?}");
    assert_eq!(statuses[24], 429, "braked after 20 failures: {statuses:?}");
    // The brake holds for a right key too, from that address, until its window ends.
    let good = http
        .get(format!("{base}/keys"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("gateway");
    assert_eq!(good.status().as_u16(), 429);
    let metrics = env.get("/metrics").await.1;
    let text = metrics.as_str().expect("text");
    assert!(
        text.lines()
            .any(|l| l.starts_with("facematch_gateway_auth_total{outcome=\"throttled\"}")),
        "throttled answers are counted"
    );
    env.cleanup().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

/// The gateway binary on a free port over the same Redis and broker names as `env`, with
/// `/metrics` on a port of its own; returns the API's and the metrics' base URLs.
fn second_gateway(env: &System, admin: &str) -> (Child, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let key_file = dir.path().join("admin.key");
    std::fs::write(&key_file, admin).expect("key file");
    let (port, metrics_port) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env("FACEMATCH_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "FACEMATCH_GATEWAY_METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env("FACEMATCH_REDIS_URL", common::REDIS_URL)
        .env("FACEMATCH_AMQP_URL", common::AMQP_URL)
        .env("FACEMATCH_KEY_PREFIX", format!("{}:", env.id))
        .env("FACEMATCH_AMQP_PREFIX", format!("{}.", env.id))
        .env("FACEMATCH_ADMIN_KEY_FILE", &key_file)
        .env_remove("FACEMATCH_AUTH")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gateway binary");
    (
        child,
        format!("http://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{metrics_port}"),
        dir,
    )
}

#[tokio::test]
async fn a_revocation_through_one_gateway_is_refused_by_another_within_a_second() {
    let (env, admin) = System::secured("auth-revoke").await;
    let key = env.create_key(&admin, "default", &["read"]).await;
    let (mut child, base, metrics, _dir) = second_gateway(&env, &admin);
    let http = reqwest::Client::new();
    let path = format!("{base}/match/{}", "0".repeat(32));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = http.get(&path).bearer_auth(&key.key).send().await;
        if let Ok(resp) = answer
            && resp.status() == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second gateway serves the key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let revoke = env
        .send_as(
            Some(&admin),
            Method::DELETE,
            &format!("/keys/{}", key.id),
            vec![],
        )
        .await;
    assert_eq!(revoke.status, 200, "{}", revoke.body);
    let revoked_at = Instant::now();
    let refused_after = loop {
        let status = http
            .get(&path)
            .bearer_auth(&key.key)
            .send()
            .await
            .expect("gateway")
            .status();
        if status == 401 {
            break revoked_at.elapsed();
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "still {status} after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        refused_after < Duration::from_secs(1),
        "refused after {refused_after:?}"
    );

    // With a metrics listener of its own, the API's port serves the API alone.
    let on_api = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("gateway");
    assert_eq!(on_api.status(), 404);
    let scraped = http
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.expect("text");
    assert!(text.contains("facematch_gateway_auth_total"), "{text}");
    let _ = child.kill();
    let _ = child.wait();
    env.cleanup().await;
}

#[tokio::test]
async fn auth_off_on_a_public_address_is_refused_at_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env("FACEMATCH_AUTH", "off")
        .env("FACEMATCH_LISTEN", "0.0.0.0:0")
        .env("FACEMATCH_REDIS_URL", "redis://127.0.0.1:1")
        .env("FACEMATCH_AMQP_URL", "amqp://127.0.0.1:1")
        .output()
        .expect("gateway binary");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("FACEMATCH_INSECURE_NO_AUTH_ON_PUBLIC_ADDRESS"),
        "{stderr}"
    );
}
