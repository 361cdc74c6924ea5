//! `facematch logs` prints the gateway's `<hostname>.rest.info` lines, run exactly as the
//! Kubernetes logs Deployment runs it (`k8s/base/logs.yaml`; `scripts/check-deploy.sh` holds
//! compose's logs service to the same command). Its own test binary: the gateway's log
//! forwarding is a global `tracing` subscriber, installed once per process.

mod common;

use std::{path::Path, process::Stdio, time::Duration};

use common::{AMQP_URL, facematch, served};
use facematch_core::{
    amqp::{AmqpLogLayer, forward_logs, log_routing_key},
    telemetry,
    testing::Proxy,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    sync::mpsc,
    time::Instant,
};

/// The logs Deployment's container `command` (`k8s/base/logs.yaml`), a flow sequence of
/// double-quoted strings, which is JSON.
fn deployment_command() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../k8s/base/logs.yaml");
    let text = std::fs::read_to_string(&path).expect("read k8s/base/logs.yaml");
    let command = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("command:"))
        .expect("the logs Deployment has a command");
    serde_json::from_str(command.trim()).expect("command is a list of quoted strings")
}

/// Waits up to 5 s for `path` to exist (`want`) or to be gone.
async fn wait_for_file(path: &Path, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while path.exists() != want {
        assert!(
            Instant::now() < deadline,
            "ready file {} should {}exist",
            path.display(),
            if want { "" } else { "not " }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// stderr of a child, line by line.
fn stderr_lines(child: &mut tokio::process::Child) -> mpsc::UnboundedReceiver<String> {
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`, calling `poke` every second meanwhile.
async fn wait_for_line<F: AsyncFnMut()>(
    rx: &mut mpsc::UnboundedReceiver<String>,
    needle: &str,
    mut poke: F,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        poke().await;
        let look_until = Instant::now() + Duration::from_secs(1);
        while let Ok(Some(line)) = tokio::time::timeout_at(look_until, rx.recv()).await {
            // The reconnect test binds `*.worker.*` only.
            assert!(
                !line.starts_with("somehost.rest."),
                "unbound key printed: {line}"
            );
            if line.contains(needle) {
                return line;
            }
            seen.push(line);
        }
    }
    panic!("no line with {needle:?} on stderr; saw: {seen:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_reconnects_after_losing_the_broker() {
    let system = served("relogs").await;
    let proxy = Proxy::start("127.0.0.1:5672".parse().expect("addr")).await;
    let prefix = format!("{}.", system.id);
    let url = format!("amqp://guest:guest@{}/%2f", proxy.addr);
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    let mut child = facematch()
        .args(["logs", "--amqp-prefix", &prefix, "--amqp-url", &url])
        .args(["--topic", "*.worker.*"])
        .env("FACEMATCH_READY_FILE", &ready)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start facematch logs");
    let mut rx = stderr_lines(&mut child);
    let publish = |text: &'static str| {
        let publisher = system.publisher.clone();
        async move || {
            let _ = publisher.publish_log("somehost.worker.info", text).await;
            // Not bound by `*.worker.*`: must never show.
            let _ = publisher.publish_log("somehost.rest.info", "rest").await;
        }
    };
    wait_for_line(&mut rx, "listening", async || {}).await;
    wait_for_file(&ready, true).await;
    // A message of two lines (the forwarder groups lines logged together): each line is
    // printed with the key.
    let line = wait_for_line(
        &mut rx,
        "before the cut",
        publish("before the cut\nits second line"),
    )
    .await;
    assert_eq!(line, "somehost.worker.info before the cut");
    let line = wait_for_line(&mut rx, "its second line", async || {}).await;
    assert_eq!(line, "somehost.worker.info its second line");

    proxy.cut();
    wait_for_line(&mut rx, "lost the connection", async || {}).await;
    // Removed before the loss is reported: no probe passes while unbound.
    assert!(!ready.exists(), "ready file left while unbound");
    proxy.restore();
    wait_for_line(&mut rx, "listening", async || {}).await;
    wait_for_file(&ready, true).await;
    let line = wait_for_line(&mut rx, "after the cut", publish("after the cut")).await;
    assert_eq!(line, "somehost.worker.info after the cut");

    child.kill().await.expect("kill facematch logs");
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
        assert!(!line.contains(".rest."), "unbound key printed: {line}");
    }
    system.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_prints_the_gateways_rest_info_lines_with_their_routing_key() {
    // As gateway/src/main.rs does, with this test's topology.
    let (forwarder, lines) =
        AmqpLogLayer::new("rest", vec!["gateway", "facematch", "facematch_core"]);
    let _telemetry = telemetry::init("client-logs-test", Some(forwarder), None);
    let system = served("logs").await;
    tokio::spawn(forward_logs(lines, system.publisher.clone()));

    // The Deployment's command, its environment as the Deployment sets it (the URL from the
    // Secret, this test's prefix, the ready file in a temporary folder).
    let command = deployment_command();
    assert_eq!(command.first().map(String::as_str), Some("facematch"));
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    let prefix = format!("{}.", system.id);
    let mut child = facematch()
        .args(&command[1..])
        .env("FACEMATCH_AMQP_URL", AMQP_URL)
        .env("FACEMATCH_AMQP_PREFIX", &prefix)
        .env("FACEMATCH_READY_FILE", &ready)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start facematch logs");
    let mut rx = stderr_lines(&mut child);
    wait_for_line(&mut rx, "listening", async || {}).await;
    wait_for_file(&ready, true).await;

    // Requests are repeated: a line published before the listener's queue was bound is lost.
    let info_key = log_routing_key("rest", &tracing::Level::INFO);
    let hash = "0".repeat(32);
    let http = reqwest::Client::new();
    let url = format!("{}/match/{hash}", system.base_url());
    let line = wait_for_line(&mut rx, &format!("/match/{hash}"), async || {
        let resp = http.get(&url).send().await.expect("request");
        assert!(resp.status().is_success());
    })
    .await;
    // debug lines of the same request may come first; wait for the info one.
    let line = if line.starts_with(&format!("{info_key} ")) {
        line
    } else {
        wait_for_line(&mut rx, &format!("{info_key} "), async || {
            let _ = http.get(&url).send().await;
        })
        .await
    };
    assert!(line.contains(&format!("/match/{hash}")), "{line}");

    child.kill().await.expect("kill facematch logs");
    system.cleanup().await;
}
