//! The real gateway binary logs each request to the `logs` topic exchange as
//! `<hostname>.rest.info` and `<hostname>.rest.debug`.

mod common;

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{AMQP_URL, unique};
use facematch_core::amqp::{
    Topology,
    lapin::{Connection, ConnectionProperties},
    log_routing_key,
};
use futures_util::StreamExt;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test]
async fn requests_are_logged_with_hostname_rest_keys() {
    let id = unique("logs");
    let topology = Topology::new(format!("{id}."));
    let conn = Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .expect("RabbitMQ");
    let channel = conn.create_channel().await.expect("channel");
    topology.declare(&channel).await.expect("declare");
    let mut consumer = topology
        .subscribe_logs(&channel, &["#"])
        .await
        .expect("subscribe to logs");

    let port = free_port();
    let _gateway = Killed(
        Command::new(env!("CARGO_BIN_EXE_gateway"))
            .env("FACEMATCH_LISTEN", format!("127.0.0.1:{port}"))
            .env("FACEMATCH_AUTH", "off")
            .env("FACEMATCH_AMQP_PREFIX", format!("{id}."))
            .env("FACEMATCH_KEY_PREFIX", format!("{id}:"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gateway"),
    );
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = http.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "gateway did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hash = "0".repeat(32);
    let resp = http
        .get(format!("{base}/match/{hash}"))
        .send()
        .await
        .expect("request");
    assert!(resp.status().is_success());

    let info_key = log_routing_key("rest", &tracing::Level::INFO);
    let debug_key = log_routing_key("rest", &tracing::Level::DEBUG);
    let (mut info, mut debug) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(15);
    while (info.is_none() || debug.is_none()) && Instant::now() < deadline {
        let Ok(Some(Ok(delivery))) =
            tokio::time::timeout(Duration::from_secs(1), consumer.next()).await
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&delivery.data).into_owned();
        if !text.contains(&format!("/match/{hash}")) {
            continue;
        }
        if delivery.routing_key.as_str() == info_key {
            info = Some(text);
        } else if delivery.routing_key.as_str() == debug_key {
            debug = Some(text);
        }
    }
    assert!(
        info.is_some_and(|t| t.contains("200")),
        "no {info_key} line"
    );
    assert!(debug.is_some(), "no {debug_key} line");
    topology.delete(&channel).await.expect("delete");
    let _ = conn.close(200, "done".into()).await;
}
