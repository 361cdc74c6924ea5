//! Harness for whole-system tests: the real gateway (in process), real workers (in process or
//! as the binary), the real RabbitMQ and Redis, each test under its own prefixes.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    io::Cursor,
    path::PathBuf,
    sync::{Once, OnceLock},
    time::{Duration, Instant},
};

use facematch_core::testing::{Namespace, remove_namespace};
use facematch_core::{
    ImageHash,
    amqp::{JobMeta, Publisher, Source, Topology, lapin::Connection},
    config::{AmqpArgs, RedisArgs, TelemetryArgs},
    store::{Store, redis},
    telemetry,
};
use gateway::{AppState, app, fetch::FetchConfig};
use gpu_worker::{
    Alignment, FacePipeline, PipelineOptions, decode_image,
    service::{self, ServeArgs},
};
use image::{ImageFormat, RgbImage, imageops::FilterType};
use poem::{EndpointExt, endpoint::BoxEndpoint, test::TestClient};
use tokio::{sync::watch, task::JoinHandle};

pub const AMQP_URL: &str = facematch_core::testing::TEST_AMQP_URL;
pub const REDIS_URL: &str = facematch_core::testing::TEST_REDIS_URL;

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn weights_dir() -> PathBuf {
    workspace().join("model-weights")
}

/// A demo image's bytes (`scripts/fetch-weights.sh` extracts them).
pub fn demo(n: u32) -> Vec<u8> {
    let path = weights_dir().join(format!("demo/sample{n}.jpg"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} — run scripts/fetch-weights.sh", path.display()))
}

fn pipeline() -> &'static FacePipeline {
    static PIPELINE: OnceLock<FacePipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        FacePipeline::load(
            &weights_dir(),
            &candle_core::Device::Cpu,
            PipelineOptions::default(),
        )
        .expect("weights — run scripts/fetch-weights.sh")
    })
}

/// Face `face` of a demo image, cropped with a margin, scaled, and encoded as `format`.
pub fn face_crop(sample: u32, face: usize, scale: f32, format: ImageFormat) -> Vec<u8> {
    let img = decode_image(&demo(sample)).expect("demo decodes");
    let faces = pipeline()
        .run(std::slice::from_ref(&img))
        .expect("pipeline");
    let [x, y, w, h] = faces[0][face].bbox;
    let (mx, my) = (w * 0.6, h * 0.6);
    let x0 = (x - mx).max(0.0) as u32;
    let y0 = (y - my).max(0.0) as u32;
    let x1 = ((x + w + mx) as u32).min(img.width());
    let y1 = ((y + h + my) as u32).min(img.height());
    let crop = image::imageops::crop_imm(&img, x0, y0, x1 - x0, y1 - y0).to_image();
    let crop = if (scale - 1.0).abs() > f32::EPSILON {
        let (cw, ch) = crop.dimensions();
        image::imageops::resize(
            &crop,
            (cw as f32 * scale) as u32,
            (ch as f32 * scale) as u32,
            FilterType::Triangle,
        )
    } else {
        crop
    };
    encode(&crop, format)
}

pub fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format)
        .expect("encode");
    out
}

/// Four group photos, crops of their faces (two of the same face), and a blank image: the
/// set the fault tests run through a failing system.
pub fn eight_images() -> Vec<(String, Vec<u8>)> {
    vec![
        ("group1.jpg".into(), demo(1)),
        ("face-a.png".into(), face_crop(1, 0, 1.0, ImageFormat::Png)),
        ("group2.jpg".into(), demo(2)),
        (
            "face-a-small.jpg".into(),
            face_crop(1, 0, 0.7, ImageFormat::Jpeg),
        ),
        ("group3.jpg".into(), demo(3)),
        ("face-c.jpg".into(), face_crop(2, 0, 0.8, ImageFormat::Jpeg)),
        ("group4.jpg".into(), demo(4)),
        ("blank.png".into(), no_face()),
    ]
}

/// A smooth gradient: an image with no face.
pub fn no_face() -> Vec<u8> {
    let img = RgbImage::from_fn(240, 180, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    encode(&img, ImageFormat::Png)
}

/// Installs tracing once per test binary.
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::mem::forget(telemetry::init("worker-test", None, None)));
}

/// Longest a test of this suite may take; a hang fails the test instead of stalling CI.
const TEST_DEADLINE: Duration = Duration::from_secs(300);

/// Runs a test body under [`TEST_DEADLINE`].
pub async fn within<F: std::future::Future>(body: F) -> F::Output {
    tokio::time::timeout(TEST_DEADLINE, body)
        .await
        .expect("the test finishes within its 5-minute deadline")
}

/// A worker running in this process.
pub struct Worker {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), service::ServeError>>,
}

impl Worker {
    /// SIGTERM's path: stop consuming, finish the batch in hand, close.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the worker stops within 60 s of SIGTERM")
            .expect("worker task")
            .expect("worker ended cleanly");
    }
}

/// A worker binary (or any child) killed when dropped.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One isolated system: gateway + prefixes; workers are added per test.
pub struct System {
    pub id: String,
    pub topology: Topology,
    pub store: Store,
    pub publisher: Publisher,
    pub gateway: TestClient<BoxEndpoint<'static, poem::Response>>,
    inspector: Connection,
}

impl System {
    pub async fn new(tag: &str) -> Self {
        init_tracing();
        let Namespace {
            id,
            topology,
            store,
            inspector,
        } = Namespace::new(tag).await;
        let publisher = Publisher::start(AMQP_URL, topology.clone());
        assert!(publisher.wait_ready(Duration::from_secs(10)).await);
        let state = AppState::new(
            store.clone(),
            publisher.clone(),
            FetchConfig::new(16 << 20, false),
            16 << 20,
            64,
        )
        .expect("fetcher");
        Self {
            id,
            topology,
            store,
            publisher,
            gateway: TestClient::new(app(state).map_to_response().boxed()),
            inspector,
        }
    }

    /// Worker settings for this system.
    pub fn worker_args(&self, max_batch: usize) -> ServeArgs {
        ServeArgs {
            amqp: AmqpArgs {
                amqp_url: AMQP_URL.into(),
                amqp_prefix: format!("{}.", self.id),
            },
            redis: RedisArgs {
                redis_url: REDIS_URL.into(),
                key_prefix: format!("{}:", self.id),
            },
            telemetry: TelemetryArgs {
                otlp_endpoint: None,
            },
            weights_dir: weights_dir(),
            device: "cpu".into(),
            max_batch: Some(max_batch),
            max_wait_ms: 50,
            threshold: 0.6,
            align: Alignment::default(),
            decode_threads: Some(2),
            metrics_listen: "127.0.0.1:0".parse().expect("addr"),
            limits: service::JobLimits::default(),
        }
    }

    /// Worker settings with `/metrics` and `/healthz` on a free port; returns their base URL.
    pub fn worker_args_with_metrics(&self, max_batch: usize) -> (ServeArgs, String) {
        let mut args = self.worker_args(max_batch);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        args.metrics_listen = format!("127.0.0.1:{port}").parse().expect("addr");
        (args, format!("http://127.0.0.1:{port}"))
    }

    /// Starts the `gpu-worker` binary for this system (CPU, `max_batch`, extra `env`).
    pub fn spawn_worker_process(&self, max_batch: usize, env: &[(&str, String)]) -> Process {
        Process(
            self.worker_command(max_batch, env)
                .spawn()
                .expect("start gpu-worker"),
        )
    }

    /// The command line of [`Self::spawn_worker_process`] (its stderr inherited).
    pub fn worker_command(
        &self,
        max_batch: usize,
        env: &[(&str, String)],
    ) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gpu-worker"));
        command
            .env("FACEMATCH_AMQP_PREFIX", format!("{}.", self.id))
            .env("FACEMATCH_KEY_PREFIX", format!("{}:", self.id))
            .env("FACEMATCH_WEIGHTS_DIR", weights_dir())
            .env("FACEMATCH_DEVICE", "cpu")
            .env("FACEMATCH_MAX_BATCH", max_batch.to_string())
            .env("FACEMATCH_METRICS_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        command
    }

    pub fn start_worker(&self, args: ServeArgs) -> Worker {
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(service::run(args, shutdown));
        Worker { stop, task }
    }

    /// Uploads through the gateway; returns the hash.
    pub async fn upload(&self, name: &str, bytes: Vec<u8>) -> ImageHash {
        let resp = self
            .gateway
            .post(format!("/scan/image/{name}"))
            .body(bytes)
            .send()
            .await;
        let status = resp.0.status();
        let body = resp.0.into_body().into_string().await.expect("body");
        assert!(status.is_success(), "upload {name}: {status} {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        json["hash"].as_str().expect("hash").parse().expect("hash")
    }

    /// Publishes bytes straight to the queue, as a hostile or buggy producer could.
    pub async fn publish_raw(&self, name: &str, bytes: &[u8]) -> ImageHash {
        let hash = ImageHash::of(bytes);
        let meta = JobMeta {
            hash,
            name: name.into(),
            source: Source::Upload,
            content_type: "application/octet-stream".into(),
            trace_headers: vec![],
        };
        self.publisher
            .publish_job(&meta, bytes)
            .await
            .expect("publish");
        hash
    }

    /// Publishes a message without a `message_id` (not a job) straight to `toWorker`.
    pub async fn publish_malformed(&self, body: &[u8]) {
        use facematch_core::amqp::lapin::{BasicProperties, options::BasicPublishOptions};
        let channel = self.inspector.create_channel().await.expect("channel");
        channel
            .basic_publish(
                self.topology.to_worker().into(),
                facematch_core::amqp::SCAN_ROUTING_KEY.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default(),
            )
            .await
            .expect("publish");
    }

    /// A consumer of the `logs` exchange bound with `pattern` (exclusive, auto-delete queue).
    pub async fn listen_logs(&self, pattern: &str) -> facematch_core::amqp::lapin::Consumer {
        let channel = self.inspector.create_channel().await.expect("channel");
        self.topology
            .subscribe_logs(&channel, &[pattern])
            .await
            .expect("subscribe to logs")
    }

    /// The test's direct broker connection (declaring, inspecting, publishing around the
    /// gateway).
    pub fn inspector(&self) -> &Connection {
        &self.inspector
    }

    /// Messages waiting in the dead-letter queue.
    pub async fn dead_letters(&self) -> u32 {
        self.queue(&self.topology.dead_queue())
            .await
            .message_count()
    }

    /// A queue's counters (messages ready, consumers); panics if it does not exist.
    pub async fn queue(&self, name: &str) -> facematch_core::amqp::lapin::Queue {
        use facematch_core::amqp::lapin::{options::QueueDeclareOptions, types::FieldTable};
        let channel = self.inspector.create_channel().await.expect("channel");
        let queue = channel
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("queue {name}: {e}"));
        let _ = channel.close(200, "inspected".into()).await;
        queue
    }

    /// Waits until the scan queue has `n` consumers (panics after `timeout`).
    pub async fn wait_scan_consumers(&self, n: u32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let have = self
                .queue(&self.topology.scan_queue())
                .await
                .consumer_count();
            if have == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "scan queue has {have} consumers, not {n}, after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
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

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let resp = self.gateway.get(path).send().await;
        let body = resp.0.into_body().into_string().await.expect("body");
        serde_json::from_str(&body).expect("json")
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
            .into_iter()
            .map(|e| e.hash)
            .collect()
    }

    pub async fn cleanup(self) {
        self.publisher.close().await;
        remove_namespace(&self.store, &self.topology, &self.inspector).await;
    }
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

/// Every (routing key, text) the consumer receives until it is quiet for `quiet`.
pub async fn drain_logs(
    consumer: &mut facematch_core::amqp::lapin::Consumer,
    quiet: Duration,
) -> Vec<(String, String)> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while let Ok(Some(Ok(delivery))) = tokio::time::timeout(quiet, consumer.next()).await {
        out.push((
            delivery.routing_key.to_string(),
            String::from_utf8_lossy(&delivery.data).into_owned(),
        ));
    }
    out
}
