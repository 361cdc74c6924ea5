//! Shared test harness: the real Redis and RabbitMQ, each test under its own key prefix and
//! queue names, plus a cuttable TCP proxy and a counting HTTP server.
#![allow(dead_code)]

pub mod http_server;

use std::{collections::HashMap, sync::Once, time::Duration};

use facematch_core::testing::{Namespace, remove_namespace};
use facematch_core::{
    amqp::{
        Publisher, Topology,
        lapin::{
            BasicProperties, Connection,
            options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions},
            types::FieldTable,
        },
    },
    store::{Store, redis},
    telemetry,
};
use gateway::{
    AppState, app,
    fetch::FetchConfig,
    limits::Limits,
    server::{ServerConfig, serve},
};
use poem::{EndpointExt, endpoint::BoxEndpoint, test::TestClient};

pub const AMQP_URL: &str = facematch_core::testing::TEST_AMQP_URL;
pub const REDIS_URL: &str = facematch_core::testing::TEST_REDIS_URL;

/// A unique name for this test run.
pub fn unique(tag: &str) -> String {
    format!("t-{tag}-{:08x}", rand::random::<u32>())
}

/// Installs tracing once per test binary so spans carry real trace ids.
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::mem::forget(telemetry::init("gateway-test", None, None)));
}

/// How to build a test gateway.
pub struct Options {
    pub amqp_url: String,
    pub max_body: usize,
    pub fetch: FetchConfig,
    pub max_in_flight: usize,
    pub limits: Limits,
    pub requeue_after: Duration,
}

impl Default for Options {
    fn default() -> Self {
        let mut fetch = FetchConfig::new(1 << 20, true);
        fetch.allowed_ports = None;
        Self {
            amqp_url: AMQP_URL.into(),
            max_body: 1 << 20,
            fetch,
            max_in_flight: 64,
            limits: Limits::default(),
            requeue_after: gateway::state::DEFAULT_REQUEUE_AFTER,
        }
    }
}

/// One isolated gateway over the real services.
pub struct Env {
    pub id: String,
    pub topology: Topology,
    pub store: Store,
    pub publisher: Publisher,
    pub client: TestClient<BoxEndpoint<'static, poem::Response>>,
    /// The state behind `client`, to serve the same gateway on a real socket.
    pub state: AppState,
    inspector: Connection,
}

impl Env {
    pub async fn new(tag: &str) -> Self {
        Self::with(tag, Options::default()).await
    }

    pub async fn with(tag: &str, options: Options) -> Self {
        init_tracing();
        let Namespace {
            id,
            topology,
            store,
            inspector,
        } = Namespace::new(tag).await;
        let publisher = Publisher::start(options.amqp_url.clone(), topology.clone());
        publisher.wait_ready(Duration::from_secs(10)).await;
        let state = AppState::new(
            store.clone(),
            publisher.clone(),
            options.fetch,
            options.max_body,
            options.max_in_flight,
        )
        .expect("fetcher")
        .with_limits(options.limits)
        .with_requeue_after(options.requeue_after);
        let endpoint = app(state.clone()).map_to_response().boxed();
        Self {
            id,
            topology,
            store,
            publisher,
            client: TestClient::new(endpoint),
            state,
            inspector,
        }
    }

    /// Serves this gateway on 127.0.0.1 (random port) with the real server; returns its
    /// address. The server stops when the test's runtime ends.
    pub async fn listen(&self, config: ServerConfig) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(serve(
            listener,
            app(self.state.clone()),
            config,
            std::future::pending(),
        ));
        addr
    }

    /// POSTs raw bytes as an upload; returns status and parsed JSON.
    pub async fn upload(&self, name: &str, bytes: Vec<u8>) -> (u16, serde_json::Value) {
        let resp = self
            .client
            .post(format!("/scan/image/{name}"))
            .body(bytes)
            .send()
            .await;
        read(resp).await
    }

    /// POSTs `{"url": url}`.
    pub async fn scan_url(&self, url: &str) -> (u16, serde_json::Value) {
        let resp = self
            .client
            .post("/scan/url")
            .content_type("application/json")
            .body(serde_json::json!({ "url": url }).to_string())
            .send()
            .await;
        read(resp).await
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        read(self.client.get(path).send().await).await
    }

    /// Messages waiting in the scan queue (without consuming them).
    pub async fn queue_len(&self) -> u32 {
        let channel = self.inspector.create_channel().await.expect("channel");
        let q = channel
            .queue_declare(
                self.topology.scan_queue().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("queue exists");
        q.message_count()
    }

    /// Takes every message out of the scan queue.
    pub async fn drain_queue(&self) -> Vec<(BasicProperties, Vec<u8>)> {
        let channel = self.inspector.create_channel().await.expect("channel");
        let mut out = Vec::new();
        while let Some(msg) = channel
            .basic_get(
                self.topology.scan_queue().into(),
                BasicGetOptions::default(),
            )
            .await
            .expect("basic_get")
        {
            msg.delivery
                .ack(BasicAckOptions::default())
                .await
                .expect("ack");
            out.push((msg.delivery.properties.clone(), msg.delivery.data.clone()));
        }
        out
    }

    /// Every Redis key under this test's prefix.
    pub async fn redis_keys(&self) -> Vec<String> {
        let mut conn = self
            .store
            .conn()
            .await
            .expect("redis must run on 127.0.0.1:6379");
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.store.keys().prefix()))
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        keys.sort();
        keys
    }

    /// Removes this test's keys, queues and exchanges.
    pub async fn cleanup(self) {
        self.publisher.close().await;
        remove_namespace(&self.store, &self.topology, &self.inspector).await;
    }
}

async fn read(resp: poem::test::TestResponse) -> (u16, serde_json::Value) {
    let status = resp.0.status().as_u16();
    let body = resp.0.into_body().into_string().await.expect("body");
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    (status, json)
}

/// A small PNG whose pixels depend on `seed`, so every seed gives different bytes.
pub fn png(seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(8, 8, |x, y| {
        image::Rgb([
            (seed & 0xff) as u8,
            ((seed >> 8) & 0xff) as u8,
            (x * 16 + y) as u8,
        ])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encode png");
    out
}

/// The error code of a JSON error answer.
pub fn error_code(body: &serde_json::Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// A header's text value.
pub fn header(props: &BasicProperties, key: &str) -> Option<String> {
    props
        .headers()
        .as_ref()
        .and_then(|h| facematch_core::amqp::header_text(h, key))
}

/// Fixed host → address mappings for the fetcher.
pub fn hosts(pairs: &[(&str, &str)]) -> HashMap<String, Vec<std::net::IpAddr>> {
    pairs
        .iter()
        .map(|(h, ip)| ((*h).to_owned(), vec![ip.parse().expect("ip")]))
        .collect()
}
