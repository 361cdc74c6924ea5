//! `facematch logs` prints the gateway's `<hostname>.rest.info` lines. Its own test binary:
//! the gateway's log forwarding is a global `tracing` subscriber, installed once per process.

mod common;

use std::{process::Stdio, time::Duration};

use common::{AMQP_URL, System, facematch};
use facematch_core::{
    amqp::{AmqpLogLayer, forward_logs, log_routing_key},
    telemetry,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    sync::mpsc,
    time::Instant,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_prints_the_gateways_rest_info_lines_with_their_routing_key() {
    // As gateway/src/main.rs does, with this test's topology.
    let (forwarder, lines) =
        AmqpLogLayer::new("rest", vec!["gateway", "facematch", "facematch_core"]);
    let _telemetry = telemetry::init("client-logs-test", Some(forwarder), None);
    let system = System::new("logs").await;
    tokio::spawn(forward_logs(lines, system.publisher.clone()));

    let prefix = format!("{}.", system.id);
    let mut child = facematch()
        .args(["logs", "--amqp-prefix", &prefix, "--amqp-url", AMQP_URL])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start facematch logs");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let next_line = async |rx: &mut mpsc::UnboundedReceiver<String>, until: Instant| {
        tokio::time::timeout_at(until, rx.recv())
            .await
            .ok()
            .flatten()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let line = next_line(&mut rx, deadline)
            .await
            .unwrap_or_else(|| panic!("no listening notice; stderr: {seen:#?}"));
        let listening = line.contains("listening");
        seen.push(line);
        if listening {
            break;
        }
    }

    let info_key = log_routing_key("rest", &tracing::Level::INFO);
    let hash = "0".repeat(32);
    let http = reqwest::Client::new();
    let url = format!("{}/match/{hash}", system.base);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut found = None;
    while found.is_none() && Instant::now() < deadline {
        // Repeated: a line published before the listener's queue was bound is not routed.
        let resp = http.get(&url).send().await.expect("request");
        assert!(resp.status().is_success());
        let look_until = Instant::now() + Duration::from_secs(1);
        while let Some(line) = next_line(&mut rx, look_until).await {
            if line.starts_with(&format!("{info_key} ")) && line.contains(&format!("/match/{hash}"))
            {
                found = Some(line);
                break;
            }
            seen.push(line);
        }
    }
    assert!(
        found.is_some(),
        "no {info_key} line on stderr; saw: {seen:#?}"
    );

    child.kill().await.expect("kill facematch logs");
    system.cleanup().await;
}
