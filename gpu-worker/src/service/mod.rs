//! `gpu-worker serve`: consume scan jobs in micro-batches, run them through the engine, store
//! faces and matches exactly once, ack. Pipeline:
//!
//! ```text
//! consumer ─(prefetch)─▶ batcher + planner + decoder ─(capacity 1)─▶ processor ─▶ engine thread
//! dead-letter consumer ─▶ marks dead-lettered jobs failed
//! ```
//!
//! The capacity-1 channel lets the next batch be decoded while the current one runs; the
//! batcher reserves its slot before decoding, so at most two batches of decoded pixels exist
//! at once (each within `FACEMATCH_MAX_BATCH_PIXELS`).

mod batcher;
mod consumer;
mod dead_letters;
mod decode_stage;
pub mod descriptor_setting;
pub mod engine;
pub mod health;
mod matcher;
mod metrics;
mod metrics_server;
mod plan;
mod processor;
mod settle;
pub(crate) mod step;
mod thumbnails;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use clap::Args;
use facematch_core::{
    Collection,
    amqp::Topology,
    config::{ServiceArgs, redact_url},
    store::Store,
};
use tokio::sync::{Semaphore, mpsc, watch};

pub use self::descriptor_setting::DescriptorSetting;
pub use self::metrics::Metrics;
pub use self::thumbnails::Thumbnails;
use self::{
    batcher::next_batch,
    consumer::{ConsumerConfig, Feed, consume},
    decode_stage::decode_batch,
    engine::Engine,
    matcher::Matcher,
    processor::Processor,
    step::{FailureStreak, StepError},
};
use crate::{
    Alignment, FacePipeline, PipelineOptions,
    decode::DecodeLimits,
    pipeline::{Detector, DetectorKind},
    select_device,
};

/// `gpu-worker serve` settings (README, "Configuration").
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub service: ServiceArgs,

    /// Folder of the converted, pinned `.safetensors` weights.
    #[arg(long, env = "FACEMATCH_WEIGHTS_DIR", default_value = "model-weights")]
    pub weights_dir: PathBuf,

    /// `auto`, `cpu`, `cuda` or `cuda:N`; `auto` falls back to the CPU with a warning.
    #[arg(long, env = "FACEMATCH_DEVICE", default_value = "auto")]
    pub device: String,

    /// Most images per batch [default: 4 on the CPU, 32 on CUDA].
    #[arg(long, env = "FACEMATCH_MAX_BATCH")]
    pub max_batch: Option<usize>,

    /// How long a batch waits for more images after its first, in milliseconds.
    #[arg(long, env = "FACEMATCH_MAX_WAIT_MS", default_value_t = 20)]
    pub max_wait_ms: u64,

    /// Largest Euclidean descriptor distance that counts as the same person.
    #[arg(long, env = "FACEMATCH_THRESHOLD", default_value_t = 0.6)]
    pub threshold: f32,

    /// Face detector: `centerface` (finds profiles, crowds and tight crops) or `ssd`
    /// (face-api's, for stores made with it). A store holds descriptors of one detector and
    /// crop: the worker refuses to start against another's.
    #[arg(long, env = "FACEMATCH_DETECTOR", default_value = "centerface")]
    pub detector: DetectorKind,

    /// Most faces kept per image (the best-scored); a crowd photo beyond it keeps this many.
    #[arg(long, env = "FACEMATCH_MAX_FACES", default_value_t = 1000)]
    pub max_faces: usize,

    /// Descriptor crop: `dlib` (dlib's face chip, the network's own) or `faceapi`. A store
    /// holds descriptors of one crop: the worker refuses to start against the other's.
    #[arg(long, env = "FACEMATCH_ALIGN", default_value = "dlib")]
    pub align: Alignment,

    /// Images decoded at once [default: the number of CPUs].
    #[arg(long, env = "FACEMATCH_DECODE_THREADS")]
    pub decode_threads: Option<usize>,

    /// Address of the worker's `/metrics` and `/healthz`.
    #[arg(long, env = "FACEMATCH_METRICS_LISTEN", default_value = "0.0.0.0:9090")]
    pub metrics_listen: SocketAddr,

    /// `on`: a small JPEG of each face is stored with it, for the web page; `off` keeps no
    /// face images (the page then shows boxes and names only).
    #[arg(
        long,
        env = "FACEMATCH_FACE_THUMBNAILS",
        value_enum,
        default_value = "on"
    )]
    pub face_thumbnails: Thumbnails,

    #[command(flatten)]
    pub limits: JobLimits,

    /// Test hook: the engine thread panics on its Nth inference (the engine-failure tests).
    #[arg(long, env = "FACEMATCH_TEST_ENGINE_FAULT_AFTER", hide = true)]
    pub test_engine_fault_after: Option<u32>,
}

/// What one job may cost the worker: the poison budget and the pixel budgets.
#[derive(Debug, Clone, Copy, Args)]
pub struct JobLimits {
    /// Times processing of an image may start without finishing (the worker crashed or
    /// inference failed while it ran) before it is failed as poison and dead-lettered.
    #[arg(long, env = "FACEMATCH_MAX_ATTEMPTS", default_value_t = 10)]
    pub max_attempts: u32,

    /// Largest canvas of one image, in pixels (width × height as declared); larger fail.
    #[arg(long, env = "FACEMATCH_MAX_IMAGE_PIXELS", default_value_t = crate::decode::MAX_PIXELS)]
    pub max_image_pixels: u64,

    /// Most canvas pixels decoded for one batch; a batch over it is split.
    #[arg(long, env = "FACEMATCH_MAX_BATCH_PIXELS", default_value_t = 64_000_000)]
    pub max_batch_pixels: u64,
}

impl Default for JobLimits {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            max_image_pixels: crate::decode::MAX_PIXELS,
            max_batch_pixels: 64_000_000,
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Device(#[from] crate::DeviceError),
    #[error(transparent)]
    Model(#[from] crate::ModelError),
    #[error("invalid Redis settings: {0}")]
    Store(#[from] facematch_core::store::StoreError),
    #[error("cannot start the engine thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot serve metrics on {0}: {1}")]
    Metrics(SocketAddr, std::io::Error),
    #[error("threshold must be a positive number, got {0}")]
    Threshold(f32),
    #[error(
        "the faces stored under this Redis key prefix were made with {}, this worker is set \
         to {}: their descriptors are not comparable. Start the worker with the store's \
         settings, or give it another FACEMATCH_KEY_PREFIX or Redis (and scan the images \
         again there) for the new ones",
        descriptor_setting::describe_recorded(.stored),
        .configured.env()
    )]
    DescriptorMismatch {
        stored: String,
        configured: DescriptorSetting,
    },
    #[error("cannot read the store's descriptor setting: {0}")]
    DescriptorUnknown(facematch_core::store::StoreError),
    #[error("cannot load the face index from the store: {0}")]
    Index(StepError),
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error(
        "the engine thread stopped (a panic or a device failure); its jobs were requeued, and \
         the worker exits so that it is restarted"
    )]
    EngineStopped,
}

/// Runs a start-up step on Redis until it answers, waiting out an unreachable Redis (logged as
/// `waiting for Redis to {what}`); `Ok(None)` when shut down meanwhile, `Err` for a refusal.
async fn wait_for_redis<T, F, Fut>(
    what: &str,
    shutdown: &watch::Receiver<bool>,
    mut step: F,
) -> Result<Option<T>, facematch_core::store::StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, facematch_core::store::StoreError>>,
{
    loop {
        match step().await {
            Ok(value) => return Ok(Some(value)),
            Err(e) if e.is_transient() => tracing::warn!(error = %e, "waiting for Redis to {what}"),
            Err(e) => return Err(e),
        }
        if *shutdown.borrow() {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Moves a store made before collections into `default` (once, whichever process gets there
/// first; see `facematch_core::store`). `Ok(false)` when shut down meanwhile.
async fn check_schema(store: &Store, shutdown: &watch::Receiver<bool>) -> Result<bool, ServeError> {
    let checked = wait_for_redis("check the key layout", shutdown, || {
        store.ensure_schema(Duration::from_secs(300))
    })
    .await?;
    Ok(checked.is_some())
}

/// Refuses a detector and crop other than those the store's faces were made with (recording
/// ours when the store is empty), so one store never mixes descriptors of two settings
/// ([`descriptor_setting`]). `Ok(false)` when shut down meanwhile.
async fn check_descriptor_setting(
    store: &Store,
    configured: DescriptorSetting,
    shutdown: &watch::Receiver<bool>,
) -> Result<bool, ServeError> {
    let wanted = configured.to_string();
    let stored = wait_for_redis("read the store's descriptor setting", shutdown, || {
        store.store_alignment(&wanted)
    })
    .await
    .map_err(ServeError::DescriptorUnknown)?;
    match stored {
        None => Ok(false),
        Some(stored) if stored == wanted => Ok(true),
        Some(stored) => Err(ServeError::DescriptorMismatch { stored, configured }),
    }
}

/// Runs until `shutdown` turns true: stops consuming, finishes and acks the batch in hand,
/// closes the connection.
pub async fn run(args: ServeArgs, shutdown: watch::Receiver<bool>) -> Result<(), ServeError> {
    // Boxed: the worker is one deep future, and a test or binary that embeds it would otherwise
    // go past the compiler's type-layout depth.
    Box::pin(serve_until(args, shutdown)).await
}

async fn serve_until(args: ServeArgs, shutdown: watch::Receiver<bool>) -> Result<(), ServeError> {
    if !(args.threshold.is_finite() && args.threshold > 0.0) {
        return Err(ServeError::Threshold(args.threshold));
    }
    for (name, value) in [
        (
            "FACEMATCH_MAX_ATTEMPTS",
            u64::from(args.limits.max_attempts),
        ),
        ("FACEMATCH_MAX_IMAGE_PIXELS", args.limits.max_image_pixels),
        ("FACEMATCH_MAX_BATCH_PIXELS", args.limits.max_batch_pixels),
        ("FACEMATCH_MAX_FACES", args.max_faces as u64),
    ] {
        if value == 0 {
            return Err(ServeError::Zero(name));
        }
    }
    let setting = DescriptorSetting {
        detector: args.detector,
        align: args.align,
    };
    let device = select_device(&args.device)?;
    let pipeline = FacePipeline::load(
        &args.weights_dir,
        &device,
        PipelineOptions {
            detector: Detector::with_max_faces(args.detector, args.max_faces),
            align: args.align,
            ..PipelineOptions::default()
        },
    )?;
    let max_batch = args
        .max_batch
        .unwrap_or(if device.is_cuda() { 32 } else { 4 })
        .max(1);
    let decode_threads = args
        .decode_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let store = Store::open(
        &args.service.redis.redis_url,
        &args.service.redis.key_prefix,
    )?;
    if !check_schema(&store, &shutdown).await?
        || !check_descriptor_setting(&store, setting, &shutdown).await?
    {
        return Ok(()); // shut down while waiting for Redis
    }
    let health = health::BrokerHealth::new();
    let engine = Engine::start(pipeline, args.test_engine_fault_after, {
        let health = health.clone();
        move || health.engine_stopped()
    })
    .map_err(ServeError::Thread)?;
    // The worker's own stop: the caller's shutdown, or the engine thread gone.
    let (stop, shutdown) = {
        let (stop, stopped) = watch::channel(false);
        let mut outside = shutdown;
        let forward = stop.clone();
        tokio::spawn(async move {
            if outside.wait_for(|s| *s).await.is_ok() {
                let _ = forward.send(true);
            }
        });
        (stop, stopped)
    };
    let metrics = Metrics::default();
    metrics.registry().keep_up();
    let metrics_server =
        metrics_server::start(args.metrics_listen, metrics.clone(), health.clone())
            .await
            .map_err(|e| ServeError::Metrics(args.metrics_listen, e))?;
    tracing::info!(
        device = ?device,
        max_batch,
        max_wait_ms = args.max_wait_ms,
        threshold = args.threshold,
        detector = %args.detector,
        max_faces = args.max_faces,
        align = %args.align,
        amqp = %redact_url(&args.service.amqp.amqp_url),
        redis = %redact_url(&args.service.redis.redis_url),
        metrics = %metrics_server,
        "worker starting"
    );

    let matcher = Matcher {
        engine: engine.clone(),
        store: store.clone(),
        threshold: args.threshold,
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
    };
    let processor = Processor {
        store,
        engine,
        matcher,
        model: setting.model_id(),
        alignment: setting.to_string(),
        metrics,
        shutdown: shutdown.clone(),
        max_attempts: args.limits.max_attempts,
        batch_pixels: args.limits.max_batch_pixels,
        failures: FailureStreak::default(),
        thumbnails: args.face_thumbnails,
    };
    let limits = DecodeLimits {
        max_pixels: args.limits.max_image_pixels,
    };
    // Load the default collection's index before taking jobs (retried while Redis is down);
    // the others are loaded when their first job comes.
    let loaded = async {
        let held = processor.matcher.held(&Collection::default()).await?;
        processor.matcher.catch_up(&held, None).await
    };
    match loaded.await {
        Ok(()) => {}
        Err(StepError::ShuttingDown) => return Ok(()), // while waiting for Redis
        Err(e) => return Err(ServeError::Index(e)),
    }

    let prefetch = u16::try_from(max_batch * 2).unwrap_or(u16::MAX);
    let (deliveries_tx, mut deliveries) = mpsc::channel(usize::from(prefetch));
    let topology = Topology::new(args.service.amqp.amqp_prefix.clone());
    let consumer = tokio::spawn(consume(
        ConsumerConfig {
            amqp_url: args.service.amqp.amqp_url.clone(),
            topology: topology.clone(),
            prefetch,
            feed: Feed::Scan,
            health,
        },
        deliveries_tx,
        shutdown.clone(),
    ));
    let (dead_tx, dead_rx) = mpsc::channel(16);
    let dead_consumer = tokio::spawn(consume(
        ConsumerConfig {
            amqp_url: args.service.amqp.amqp_url.clone(),
            topology,
            prefetch: 16,
            feed: Feed::Dead,
            // Its own link's progress; `/healthz` reports the scan link's.
            health: health::BrokerHealth::new(),
        },
        dead_tx,
        shutdown,
    ));
    let dead_letters = tokio::spawn(dead_letters::mark_failed(processor.clone(), dead_rx));

    let (batches_tx, mut batches) = mpsc::channel(1);
    let limiter = Arc::new(Semaphore::new(decode_threads));
    let max_wait = Duration::from_millis(args.max_wait_ms);
    let planner = processor.clone();
    let batcher = tokio::spawn(async move {
        while let Some(batch) = next_batch(&mut deliveries, max_batch, max_wait).await {
            for group in planner.plan(batch).await {
                // Reserve the slot first: only then decode, so decoded batches never pile up.
                let Ok(slot) = batches_tx.reserve().await else {
                    return;
                };
                slot.send(decode_batch(group, limiter.clone(), limits, &planner.metrics).await);
            }
        }
    });
    let worker = tokio::spawn(async move {
        let mut engine_gone = false;
        let mut trimmed = true;
        loop {
            let batch = if trimmed {
                batches.recv().await
            } else {
                match tokio::time::timeout(crate::memory::IDLE_BEFORE_TRIM, batches.recv()).await {
                    Ok(batch) => batch,
                    Err(_) => {
                        // Idle: give the last batches' freed memory back to the kernel.
                        let _ = tokio::task::spawn_blocking(crate::memory::give_back_freed_memory)
                            .await;
                        trimmed = true;
                        continue;
                    }
                }
            };
            let Some(batch) = batch else { break };
            trimmed = false;
            processor.process(batch).await;
            if !engine_gone && !processor.engine.is_alive() {
                // Nothing more can run here: stop consuming (what is in hand is requeued by
                // each failed batch) and exit non-zero, so the orchestrator restarts us.
                engine_gone = true;
                let _ = stop.send(true);
            }
        }
        engine_gone
    });

    // The consumer returns on shutdown and closes the deliveries channel; the batcher and the
    // processor then drain what is in hand before the connection closes.
    let connection = consumer.await.ok().flatten();
    let dead_connection = dead_consumer.await.ok().flatten();
    let _ = batcher.await;
    let engine_gone = worker.await.unwrap_or(false);
    let _ = dead_letters.await;
    for connection in [connection, dead_connection].into_iter().flatten() {
        let close = connection.close(200, "worker shutting down".into());
        if tokio::time::timeout(consumer::BROKER_REPLY, close)
            .await
            .is_err()
        {
            tracing::warn!("the broker did not confirm the connection's close");
        }
    }
    if engine_gone {
        tracing::error!("worker stopped: its engine thread has stopped");
        return Err(ServeError::EngineStopped);
    }
    tracing::info!("worker stopped");
    Ok(())
}
