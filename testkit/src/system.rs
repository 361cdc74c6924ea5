//! [`System`]: one isolated facematch over the real RabbitMQ and Redis — its own key prefix,
//! queue and exchange names, removed by [`System::cleanup`] — with the real gateway in process.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::Once,
    time::{Duration, Instant},
};

use facematch_core::{
    ImageHash,
    amqp::{Publisher, Topology, lapin::Connection},
    store::{Store, redis},
    telemetry,
    testing::{Namespace, TEST_AMQP_URL, remove_namespace},
};
use gateway::{
    AppState, app,
    auth::Auth,
    fetch::FetchConfig,
    limits::Limits,
    server::{ServerConfig, serve},
};
use poem::{EndpointExt, endpoint::BoxEndpoint, test::TestClient};

/// Installs tracing once per test binary, so spans carry real trace ids.
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::mem::forget(telemetry::init("facematch-test", None, None)));
}

/// A unique name for this test run.
pub fn unique(tag: &str) -> String {
    format!("t-{tag}-{:08x}", rand::random::<u32>())
}

/// Longest a system test may take; a hang fails the test instead of stalling CI.
const TEST_DEADLINE: Duration = Duration::from_secs(300);

/// Runs a test body under a 5-minute deadline.
pub async fn within<F: std::future::Future>(body: F) -> F::Output {
    tokio::time::timeout(TEST_DEADLINE, body)
        .await
        .expect("the test finishes within its 5-minute deadline")
}

/// How to build the test gateway. The default takes 16 MiB bodies, fetches from any
/// address and port (the tests' own HTTP servers listen on 127.0.0.1), and installs the
/// test binary's tracing.
pub struct Options {
    pub amqp_url: String,
    pub max_body: usize,
    pub fetch: FetchConfig,
    pub max_in_flight: usize,
    pub limits: Limits,
    pub requeue_after: Duration,
    /// Keys: off by default (every request in `default`); the auth tests turn them on.
    pub auth: Auth,
    /// Install [`init_tracing`]'s subscriber; off for a test binary that installs its own
    /// (one global subscriber per process).
    pub init_tracing: bool,
}

impl Default for Options {
    fn default() -> Self {
        let mut fetch = FetchConfig::new(16 << 20, true);
        fetch.allowed_ports = None;
        Self {
            amqp_url: TEST_AMQP_URL.into(),
            max_body: 16 << 20,
            fetch,
            max_in_flight: 64,
            limits: Limits::default(),
            requeue_after: gateway::state::DEFAULT_REQUEUE_AFTER,
            auth: Auth::off(),
            init_tracing: true,
        }
    }
}

/// One isolated system: the gateway in process, its store and broker names; workers are added
/// per test ([`crate::worker`]).
pub struct System {
    pub id: String,
    pub topology: Topology,
    pub store: Store,
    pub publisher: Publisher,
    /// The gateway, driven without a socket.
    pub client: TestClient<BoxEndpoint<'static, poem::Response>>,
    /// The state behind `client`, to serve the same gateway on a socket.
    pub state: AppState,
    pub(crate) inspector: Connection,
    base: Option<String>,
}

impl System {
    /// A system with the default [`Options`], its gateway's broker link up.
    pub async fn new(tag: &str) -> Self {
        let system = Self::with(tag, Options::default()).await;
        assert!(
            system.publisher.is_ready().await,
            "the gateway reaches RabbitMQ at {TEST_AMQP_URL} within 10 s"
        );
        system
    }

    pub async fn with(tag: &str, options: Options) -> Self {
        Self::on(Namespace::new(tag).await, options).await
    }

    /// A system with the default [`Options`] over a namespace the test prepared (keys written
    /// by an older version, say).
    pub async fn attach(namespace: Namespace) -> Self {
        Self::on(namespace, Options::default()).await
    }

    async fn on(namespace: Namespace, options: Options) -> Self {
        if options.init_tracing {
            init_tracing();
        }
        let Namespace {
            id,
            topology,
            store,
            inspector,
        } = namespace;
        Box::pin(store.ensure_schema(Duration::from_secs(10)))
            .await
            .expect("Redis must run on 127.0.0.1:6379");
        let publisher = Publisher::start(options.amqp_url.clone(), topology.clone());
        // Not asserted: fault tests start with the broker unreachable on purpose.
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
        .with_requeue_after(options.requeue_after)
        .with_auth(options.auth);
        let endpoint = app(state.clone()).map_to_response().boxed();
        Self {
            id,
            topology,
            store,
            publisher,
            client: TestClient::new(endpoint),
            state,
            inspector,
            base: None,
        }
    }

    /// Serves this gateway on 127.0.0.1 (random port) with the real server; returns its
    /// address (also [`Self::base_url`]). The server stops when the test's runtime ends.
    pub async fn listen(&mut self, config: ServerConfig) -> SocketAddr {
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
        self.base = Some(format!("http://{addr}"));
        addr
    }

    /// [`Self::listen`] with the gateway's usual settings (10 s header timeout, 1024
    /// connections, 1 s grace).
    pub async fn serve(&mut self) -> SocketAddr {
        self.listen(ServerConfig {
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_address: 0,
            grace: Duration::from_secs(1),
        })
        .await
    }

    /// `http://127.0.0.1:PORT` of the gateway served by [`Self::listen`].
    pub fn base_url(&self) -> &str {
        self.base
            .as_deref()
            .expect("the gateway is served on a socket (System::listen)")
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

    /// Uploads and expects it accepted; returns the hash.
    pub async fn scan(&self, name: &str, bytes: Vec<u8>) -> ImageHash {
        let (status, body) = self.upload(name, bytes).await;
        assert_eq!(status, 200, "upload {name}: {body}");
        body["hash"].as_str().expect("hash").parse().expect("hash")
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

    /// GETs `path`; returns status and parsed JSON (a string when the body is not JSON).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        read(self.client.get(path).send().await).await
    }

    /// GETs `path` and returns its JSON, whatever the status.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).await.1
    }

    /// `GET /images/{hash}` once it is `done` or `failed` (panics after `timeout`).
    pub async fn wait_final(&self, hash: ImageHash, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.store.image_status(hash).await.ok().flatten();
            if let Some(s) = &status
                && s.state.is_final()
            {
                return self.get_json(&format!("/images/{hash}")).await;
            }
            assert!(
                Instant::now() < deadline,
                "{hash} not final after {timeout:?}: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET /match/{hash}`.
    pub async fn matches(&self, hash: ImageHash) -> Vec<String> {
        serde_json::from_value(self.get_json(&format!("/match/{hash}")).await).expect("list")
    }

    /// Every image's matches as stored: hash → (other → distance).
    pub async fn match_table(&self, hashes: &[ImageHash]) -> MatchTable {
        let mut conn = self.store.conn().await.expect("redis");
        let mut out = BTreeMap::new();
        for h in hashes {
            let pairs: Vec<(String, f64)> = redis::cmd("ZRANGE")
                .arg(self.store.keys().matches(*h))
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await
                .expect("zrange");
            out.insert(
                *h,
                pairs
                    .into_iter()
                    .map(|(o, d)| (o.parse().expect("hash"), d))
                    .collect(),
            );
        }
        out
    }

    /// Every `facelog` entry's image, in log order.
    pub async fn facelog_owners(&self) -> Vec<ImageHash> {
        self.store
            .read_facelog(None, None, 1_000_000)
            .await
            .expect("facelog")
            .faces
            .into_iter()
            .map(|e| e.hash)
            .collect()
    }

    /// Waits for every image to be final and asserts each is `done` with each of its faces in
    /// `facelog` exactly once (no face lost, none appended twice by a retry or a redelivery).
    pub async fn assert_done_and_logged_once(&self, hashes: &[ImageHash], timeout: Duration) {
        let mut faces = BTreeMap::new();
        for h in hashes {
            let status = self.wait_final(*h, timeout).await;
            assert_eq!(status["state"], "done", "{h} is not done: {status}");
            let count = status["face_count"].as_u64().expect("face_count");
            faces.insert(*h, count);
        }
        let mut logged = BTreeMap::new();
        for owner in self.facelog_owners().await {
            *logged.entry(owner).or_insert(0u64) += 1;
        }
        for (h, count) in &faces {
            assert_eq!(
                logged.get(h).copied().unwrap_or(0),
                *count,
                "facelog entries of {h} against its face count"
            );
        }
    }

    /// Sets an image's count of processing attempts, as crashed workers would have left it.
    pub async fn set_attempts(&self, hash: ImageHash, attempts: u32) {
        let mut conn = self.store.conn().await.expect("redis");
        let _: i64 = redis::cmd("HSET")
            .arg(self.store.keys().image(hash))
            .arg("attempts")
            .arg(attempts)
            .query_async(&mut conn)
            .await
            .expect("hset");
    }

    /// An image's count of processing attempts (0 when none).
    pub async fn attempts(&self, hash: ImageHash) -> u32 {
        self.store.attempts(&[hash]).await.expect("redis")[0]
    }

    /// Every key under the system's prefix with its whole value, as text (binary values escaped).
    pub async fn redis_dump(&self) -> Vec<(String, String)> {
        let mut conn = self.store.conn().await.expect("redis");
        let names: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.store.keys().prefix()))
            .query_async(&mut conn)
            .await
            .expect("keys");
        let mut out = Vec::new();
        for name in names {
            let kind: String = redis::cmd("TYPE")
                .arg(&name)
                .query_async(&mut conn)
                .await
                .expect("type");
            let mut cmd = match kind.as_str() {
                "string" => redis::cmd("GET"),
                "hash" => redis::cmd("HGETALL"),
                "set" => redis::cmd("SMEMBERS"),
                "zset" => redis::cmd("ZRANGE"),
                "stream" => redis::cmd("XRANGE"),
                other => panic!("{name} has type {other}"),
            };
            cmd.arg(&name);
            match kind.as_str() {
                "zset" => {
                    cmd.arg(0).arg(-1);
                }
                "stream" => {
                    cmd.arg("-").arg("+");
                }
                _ => {}
            }
            let value: redis::Value = cmd.query_async(&mut conn).await.expect("value");
            out.push((name, format!("{value:?}")));
        }
        out
    }

    /// Every Redis key under this system's prefix that a request or a job made, sorted.
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
        // What every store holds from its start: the layout version, the collections and the
        // default collection's epoch.
        let keys_ = self.store.keys();
        let baseline = [keys_.schema(), keys_.collections(), keys_.epoch()];
        keys.retain(|k| !baseline.contains(k));
        keys.sort();
        keys
    }

    /// Removes this system's keys, queues and exchanges (stop its workers first).
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

/// hash → (other → distance).
pub type MatchTable = BTreeMap<ImageHash, BTreeMap<ImageHash, f64>>;

/// Asserts two match tables are the same: identical pairs, distances equal to 1e-5. (A
/// redelivered image runs alone in its batch, and the matrix products of a batch of one and
/// of four may round differently in the last bits of a descriptor.)
pub fn assert_same_matches(a: &MatchTable, b: &MatchTable) {
    assert_eq!(a.len(), b.len());
    for (hash, left) in a {
        let right = &b[hash];
        assert_eq!(
            left.keys().collect::<Vec<_>>(),
            right.keys().collect::<Vec<_>>(),
            "matches of {hash} differ"
        );
        for (other, d) in left {
            assert!(
                (d - right[other]).abs() < 1e-5,
                "{hash}–{other}: {d} vs {}",
                right[other]
            );
        }
    }
}
