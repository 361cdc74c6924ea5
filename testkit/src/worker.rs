//! Workers for a [`System`]: in process ([`System::start_worker`]) or as the `gpu-worker`
//! binary ([`System::worker_command`]), on the CPU, on the system's queue and keys.

use std::{collections::HashMap, path::Path, time::Duration};

use facematch_core::config::{AmqpArgs, RedisArgs, ServiceArgs, TelemetryArgs};
use gpu_worker::{
    Alignment,
    pipeline::DetectorKind,
    service::{self, JobLimits, ServeArgs},
};
use tokio::{sync::watch, task::JoinHandle};

use crate::{AMQP_URL, REDIS_URL, System, paths::weights_dir};

/// A worker running in this process.
pub struct Worker {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), service::ServeError>>,
}

impl Worker {
    /// Waits for the worker to end by itself (at most `timeout`) and returns how it ended.
    pub async fn exited(self, timeout: Duration) -> Result<(), service::ServeError> {
        tokio::time::timeout(timeout, self.task)
            .await
            .expect("the worker ends by itself")
            .expect("worker task")
    }

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

impl System {
    /// Worker settings for this system: CPU, batches of up to `max_batch`, 2 decode threads.
    pub fn worker_args(&self, max_batch: usize) -> ServeArgs {
        ServeArgs {
            service: ServiceArgs {
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
            },
            weights_dir: weights_dir(),
            device: "cpu".into(),
            max_batch: Some(max_batch),
            max_wait_ms: 50,
            threshold: 0.6,
            detector: DetectorKind::default(),
            max_faces: 1000,
            align: Alignment::default(),
            decode_threads: Some(2),
            metrics_listen: "127.0.0.1:0".parse().expect("addr"),
            face_thumbnails: service::Thumbnails::On,
            limits: JobLimits::default(),
            test_engine_fault_after: None,
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

    /// Starts a worker in this process.
    pub fn start_worker(&self, args: ServeArgs) -> Worker {
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(service::run(args, shutdown));
        Worker { stop, task }
    }

    /// The command line of the `gpu-worker` binary at `binary` for this system (CPU,
    /// `max_batch`, extra `env`; stdout dropped, stderr inherited).
    pub fn worker_command(
        &self,
        binary: &Path,
        max_batch: usize,
        env: &[(&str, String)],
    ) -> std::process::Command {
        let mut command = std::process::Command::new(binary);
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

    /// Starts the `gpu-worker` binary at `binary` for this system (see [`Self::worker_command`]).
    pub fn spawn_worker(&self, binary: &Path, max_batch: usize, env: &[(&str, String)]) -> Process {
        Process(
            self.worker_command(binary, max_batch, env)
                .spawn()
                .expect("start gpu-worker"),
        )
    }
}

/// A worker's `/metrics` at `metrics_base`, parsed (`series → value`); panics if it does not
/// answer or is not well-formed Prometheus text.
pub async fn worker_metrics(metrics_base: &str) -> HashMap<String, f64> {
    let text = reqwest::get(format!("{metrics_base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    facematch_core::testing::parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Waits until the worker at `metrics_base` has counted at least `n` jobs ending in `outcome`
/// (`facematch_worker_jobs_total{outcome}`); panics with `what` after `timeout`.
pub async fn wait_for_jobs(
    metrics_base: &str,
    outcome: &str,
    n: f64,
    timeout: Duration,
    what: &str,
) {
    let series = format!(r#"facematch_worker_jobs_total{{outcome="{outcome}"}}"#);
    let deadline = std::time::Instant::now() + timeout;
    while worker_metrics(metrics_base)
        .await
        .get(&series)
        .copied()
        .unwrap_or(0.0)
        < n
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
