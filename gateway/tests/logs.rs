//! The real gateway binary logs each request to the `logs` topic exchange as
//! `<hostname>.rest.info` and `<hostname>.rest.debug`, and each change of keys and collections
//! as an audit line (key id, collection, scopes; never the key).

mod common;

use std::time::{Duration, Instant};

use common::gateway_process::GatewayProcess;

use facematch_core::{
    amqp::{lapin::Consumer, log_routing_key},
    api_key::generate_key,
    testing::{Namespace, remove_namespace},
};
use futures_util::StreamExt;

/// The gateway binary under `ns`'s names, with `env` added (keys required unless it says
/// otherwise); waits until ready. Returns it and its base URL.
async fn gateway(ns: &Namespace, env: &[(&str, &str)]) -> (GatewayProcess, String) {
    let mut settings = vec![("FACEMATCH_AUTH", "required")];
    settings.extend_from_slice(env);
    let process = GatewayProcess::start(ns, &settings).await;
    let base = format!("http://{}", process.addr);
    (process, base)
}

/// The lines of a subscription to the logs exchange, kept as they arrive. A publisher groups
/// the lines of a moment into one message, so one message may hold several of the lines a
/// test looks for; each is found whichever call reads its message.
struct Lines {
    consumer: Consumer,
    /// `(routing key, line)` of every line read so far.
    seen: Vec<(String, String)>,
}

impl Lines {
    fn new(consumer: Consumer) -> Self {
        Self {
            consumer,
            seen: Vec::new(),
        }
    }

    /// The first line under `routing_key` that contains `needle`, waiting up to 15 s for it.
    async fn find(&mut self, routing_key: &str, needle: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self
                .seen
                .iter()
                .find(|(key, line)| key == routing_key && line.contains(needle));
            if let Some((_, line)) = found {
                return Some(line.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            let Ok(Some(Ok(delivery))) =
                tokio::time::timeout(Duration::from_secs(1), self.consumer.next()).await
            else {
                continue;
            };
            let key = delivery.routing_key.as_str().to_owned();
            let text = String::from_utf8_lossy(&delivery.data).into_owned();
            self.seen
                .extend(text.lines().map(|line| (key.clone(), line.to_owned())));
        }
    }
}

#[tokio::test]
async fn requests_are_logged_with_hostname_rest_keys() {
    let ns = Namespace::new("logs").await;
    let channel = ns.inspector.create_channel().await.expect("channel");
    let mut info = Lines::new(
        ns.topology
            .subscribe_logs(&channel, &["#"])
            .await
            .expect("subscribe"),
    );
    let mut debug = Lines::new(
        ns.topology
            .subscribe_logs(&channel, &["#"])
            .await
            .expect("subscribe"),
    );
    let (_gateway, base) = gateway(&ns, &[("FACEMATCH_AUTH", "off")]).await;
    let hash = "0".repeat(32);
    let resp = reqwest::get(format!("{base}/match/{hash}"))
        .await
        .expect("request");
    assert!(resp.status().is_success());

    let info_key = log_routing_key("rest", &tracing::Level::INFO);
    let debug_key = log_routing_key("rest", &tracing::Level::DEBUG);
    let needle = format!("/match/{hash}");
    let line = info.find(&info_key, &needle).await;
    assert!(
        line.is_some_and(|t| t.contains("200")),
        "no {info_key} line"
    );
    assert!(
        debug.find(&debug_key, &needle).await.is_some(),
        "no {debug_key} line"
    );
    remove_namespace(&ns.store, &ns.topology, &ns.inspector).await;
}

#[tokio::test]
async fn key_changes_are_audited_without_the_key() {
    let ns = Namespace::new("audit").await;
    let channel = ns.inspector.create_channel().await.expect("channel");
    let mut lines = Lines::new(
        ns.topology
            .subscribe_logs(&channel, &["#"])
            .await
            .expect("subscribe"),
    );
    let dir = tempfile::tempdir().expect("dir");
    let admin = generate_key();
    let key_file = dir.path().join("admin.key");
    std::fs::write(&key_file, &admin).expect("key file");
    let (_gateway, base) = gateway(
        &ns,
        &[(
            "FACEMATCH_ADMIN_KEY_FILE",
            key_file.to_str().expect("utf-8"),
        )],
    )
    .await;
    let http = reqwest::Client::new();
    let made: serde_json::Value = http
        .post(format!("{base}/keys"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "collection": "default", "scopes": ["scan", "read"] }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let (key, id) = (
        made["key"].as_str().expect("key"),
        made["id"].as_str().expect("id"),
    );
    let revoked = http
        .delete(format!("{base}/keys/{id}"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);

    // An erasure: logged with the hash, the key id and the counts, never the names.
    let uploaded: serde_json::Value = http
        .post(format!("{base}/scan/image/secret-name.png"))
        .bearer_auth(&admin)
        .body(common::png(21))
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let hash = uploaded["hash"].as_str().expect("hash").to_owned();
    let erased = http
        .delete(format!("{base}/images/{hash}"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("erase");
    assert_eq!(erased.status(), 200);

    let info_key = log_routing_key("rest", &tracing::Level::INFO);
    for event in ["api key created", "api key revoked"] {
        let line = lines.find(&info_key, event).await;
        let line = line.unwrap_or_else(|| panic!("no {event:?} line on {info_key}"));
        assert!(
            line.contains(id) && line.contains("default") && line.contains("scan,read"),
            "{line}"
        );
        assert!(
            !line.contains(&key[4..]) && !line.contains(&admin[4..]),
            "a key was logged: {line}"
        );
    }
    let line = lines.find(&info_key, "image erased").await;
    let line = line.unwrap_or_else(|| panic!("no erasure line on {info_key}"));
    assert!(
        line.contains(&hash) && line.contains("bootstrap-admin") && line.contains("names=1"),
        "{line}"
    );
    assert!(
        !line.contains("secret-name"),
        "an erasure line names no file: {line}"
    );
    remove_namespace(&ns.store, &ns.topology, &ns.inspector).await;
}
