//! Test harness: the real gateway served in process on a TCP port, a real worker in process,
//! the real RabbitMQ and Redis — each test under its own key prefix and AMQP prefix, removed
//! at the end — and the `facematch` binary run as a subprocess against them.
#![allow(dead_code)]

use std::{
    io::Cursor,
    path::{Path, PathBuf},
    process::Output,
    sync::OnceLock,
    time::Duration,
};

use facematch_core::testing::{Namespace, remove_namespace};
use facematch_core::{
    amqp::{Publisher, Topology, lapin::Connection},
    config::{AmqpArgs, RedisArgs, TelemetryArgs},
    store::Store,
};
use gateway::{AppState, app, fetch::FetchConfig};
use gpu_worker::{
    Alignment, FacePipeline, PipelineOptions, decode_image,
    service::{self, ServeArgs},
};
use image::{ImageFormat, RgbImage};
use poem::{Server, listener::TcpAcceptor};
use tokio::{sync::watch, task::JoinHandle};

pub const AMQP_URL: &str = facematch_core::testing::TEST_AMQP_URL;
pub const REDIS_URL: &str = facematch_core::testing::TEST_REDIS_URL;

pub fn weights_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model-weights")
}

/// A demo image's path (`scripts/fetch-weights.sh` extracts them).
pub fn demo_path(n: u32) -> PathBuf {
    let path = weights_dir().join(format!("demo/sample{n}.jpg"));
    assert!(
        path.is_file(),
        "{} is missing — run scripts/fetch-weights.sh",
        path.display()
    );
    path
}

/// The first face of a demo image, cropped with a margin, as PNG.
pub fn face_crop(sample: u32) -> Vec<u8> {
    static PIPELINE: OnceLock<FacePipeline> = OnceLock::new();
    let pipeline = PIPELINE.get_or_init(|| {
        FacePipeline::load(
            &weights_dir(),
            &candle_core::Device::Cpu,
            PipelineOptions::default(),
        )
        .expect("weights — run scripts/fetch-weights.sh")
    });
    let bytes = std::fs::read(demo_path(sample)).expect("demo image");
    let img = decode_image(&bytes).expect("demo decodes");
    let faces = pipeline.run(std::slice::from_ref(&img)).expect("pipeline");
    let [x, y, w, h] = faces[0].first().expect("the demo image has a face").bbox;
    let (mx, my) = (w * 0.6, h * 0.6);
    let x0 = (x - mx).max(0.0) as u32;
    let y0 = (y - my).max(0.0) as u32;
    let x1 = ((x + w + mx) as u32).min(img.width());
    let y1 = ((y + h + my) as u32).min(img.height());
    let crop: RgbImage = image::imageops::crop_imm(&img, x0, y0, x1 - x0, y1 - y0).to_image();
    let mut out = Vec::new();
    crop.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .expect("encode");
    out
}

/// A worker running in this process.
struct Worker {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), service::ServeError>>,
}

/// One isolated system: a gateway on a real port, optionally a worker.
pub struct System {
    pub id: String,
    pub topology: Topology,
    pub store: Store,
    pub publisher: Publisher,
    /// `http://127.0.0.1:PORT` of the in-process gateway.
    pub base: String,
    server: JoinHandle<std::io::Result<()>>,
    worker: Option<Worker>,
    inspector: Connection,
}

impl System {
    pub async fn new(tag: &str) -> Self {
        let Namespace {
            id,
            topology,
            store,
            inspector,
        } = Namespace::new(&format!("cli-{tag}")).await;
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let acceptor = TcpAcceptor::from_tokio(listener).expect("acceptor");
        let server = tokio::spawn(Server::new_with_acceptor(acceptor).run(app(state)));
        Self {
            id,
            topology,
            store,
            publisher,
            base: format!("http://{addr}"),
            server,
            worker: None,
            inspector,
        }
    }

    /// Starts a CPU worker on this system's queue and keys.
    pub fn start_worker(&mut self) {
        let args = ServeArgs {
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
            max_batch: Some(4),
            max_wait_ms: 50,
            threshold: 0.6,
            align: Alignment::default(),
            decode_threads: Some(2),
            metrics_listen: "127.0.0.1:0".parse().expect("addr"),
            limits: gpu_worker::service::JobLimits::default(),
        };
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(service::run(args, shutdown));
        self.worker = Some(Worker { stop, task });
    }

    /// `facematch ARGS…` against this system's gateway; waits for it to exit.
    pub async fn facematch(&self, args: &[&str]) -> Run {
        let output = facematch()
            .env("FACEMATCH_GATEWAY", &self.base)
            .args(args)
            .output()
            .await
            .expect("run facematch");
        Run::from(output)
    }

    /// Stops the worker and the gateway, removes this test's keys, queues and exchanges.
    pub async fn cleanup(mut self) {
        if let Some(worker) = self.worker.take() {
            let _ = worker.stop.send(true);
            worker
                .task
                .await
                .expect("worker task")
                .expect("worker ended cleanly");
        }
        self.server.abort();
        self.publisher.close().await;
        remove_namespace(&self.store, &self.topology, &self.inspector).await;
    }
}

/// The `facematch` binary, without the caller's `FACEMATCH_*` settings.
pub fn facematch() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_facematch"));
    for var in [
        "FACEMATCH_GATEWAY",
        "FACEMATCH_AMQP_URL",
        "FACEMATCH_AMQP_PREFIX",
        "FACEMATCH_READY_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.kill_on_drop(true);
    cmd
}

/// A finished `facematch` run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// stdout as one JSON value per line.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}\n{self:?}")))
            .collect()
    }
}

/// Copies a file into `dir` under `name`.
pub fn copy_as(from: &Path, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(from, &to).expect("copy");
    to
}
