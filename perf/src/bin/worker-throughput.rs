//! Images per second through the worker service (queue → decode → batch inference → store →
//! match → ack) at several batch sizes, on the real RabbitMQ and Redis; with `--in-process`, the
//! decode and pipeline alone, with per-stage times (`facematch_perf::pipeline_bench`), for
//! machines without broker or store.
//!
//! `cargo run --release -p facematch-perf --bin worker-throughput [-- --batches 1,4,8 --images 48]`
//! (run from the repository root, after `scripts/fetch-weights.sh`).

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use clap::Parser;
use facematch_core::{
    ImageHash,
    amqp::{JobMeta, Publisher, Source, Topology, lapin},
    config::{AmqpArgs, RedisArgs, ServiceArgs, TelemetryArgs},
    store::{ImageState, Store, redis},
};
use facematch_perf::pipeline_bench::{self, PipelineBenchArgs};
use gpu_worker::{
    Alignment,
    pipeline::DetectorKind,
    service::{self, ServeArgs},
};
use tokio::sync::watch;

#[derive(Debug, Parser)]
struct Args {
    /// Batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 4, 8])]
    batches: Vec<usize>,
    /// Jobs per measurement (the six demo images, each made unique).
    #[arg(long, default_value_t = 48)]
    images: usize,
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    #[arg(long, default_value = "model-weights")]
    weights_dir: PathBuf,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Decode and pipeline in this process, no broker or store.
    #[arg(long)]
    in_process: bool,
    /// The worker's face detector (`FACEMATCH_DETECTOR`): `centerface` or `ssd`.
    #[arg(long, default_value = "centerface")]
    detector: DetectorKind,
    /// Whether the worker keeps a thumbnail of each face (`FACEMATCH_FACE_THUMBNAILS`).
    #[arg(long, value_enum, default_value = "on")]
    thumbnails: gpu_worker::service::Thumbnails,
}

async fn measure(args: &Args, batch: usize, demos: &[Vec<u8>]) -> anyhow::Result<f64> {
    let id = format!("perf-{batch}-{:08x}", rand::random::<u32>());
    let topology = Topology::new(format!("{id}."));
    let store = Store::open(&args.redis_url, &format!("{id}:"))?;
    let conn =
        lapin::Connection::connect(&args.amqp_url, lapin::ConnectionProperties::default()).await?;
    let channel = conn.create_channel().await?;
    topology.declare(&channel).await?;
    let publisher = Publisher::start(args.amqp_url.clone(), topology.clone());
    anyhow::ensure!(
        publisher.wait_ready(Duration::from_secs(10)).await,
        "broker not ready"
    );

    let (stop, shutdown) = watch::channel(false);
    let serve = ServeArgs {
        service: ServiceArgs {
            amqp: AmqpArgs {
                amqp_url: args.amqp_url.clone(),
                amqp_prefix: format!("{id}."),
            },
            redis: RedisArgs {
                redis_url: args.redis_url.clone(),
                key_prefix: format!("{id}:"),
            },
            telemetry: TelemetryArgs {
                otlp_endpoint: None,
            },
        },
        weights_dir: args.weights_dir.clone(),
        device: args.device.clone(),
        max_batch: Some(batch),
        max_wait_ms: 20,
        threshold: 0.6,
        detector: args.detector,
        max_faces: 1000,
        align: Alignment::default(),
        decode_threads: None,
        metrics_listen: "127.0.0.1:0".parse()?,
        face_thumbnails: args.thumbnails,
        limits: gpu_worker::service::JobLimits::default(),
        test_engine_fault_after: None,
    };
    let worker = tokio::spawn(service::run(serve, shutdown));
    tokio::time::sleep(Duration::from_secs(2)).await; // models loaded, consumer up

    let started = Instant::now();
    let mut hashes = Vec::new();
    for n in 0..args.images {
        let bytes = facematch_perf::unique_jpeg(&demos[n % demos.len()], n);
        let meta = JobMeta {
            hash: ImageHash::of(&bytes),
            collection: Default::default(),
            epoch: None,
            name: format!("perf-{n}.jpg"),
            source: Source::Upload,
            content_type: "image/jpeg".into(),
            trace_headers: vec![],
        };
        // As a gateway does: the record first (a worker writes nothing without one).
        store
            .claim_image(meta.hash, Duration::from_secs(900))
            .await?;
        publisher.publish_job(&meta, &bytes).await?;
        hashes.push(meta.hash);
    }
    for hash in &hashes {
        loop {
            let state = store.image_status(*hash).await?.map(|s| s.state);
            if state == Some(ImageState::Done) {
                break;
            }
            anyhow::ensure!(state != Some(ImageState::Failed), "{hash} failed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let seconds = started.elapsed().as_secs_f64();

    let _ = stop.send(true);
    worker.await??;
    let mut redis_conn = store.conn().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{id}:*"))
        .query_async(&mut redis_conn)
        .await?;
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut redis_conn)
            .await?;
    }
    publisher.close().await;
    topology.delete(&channel).await?;
    Ok(args.images as f64 / seconds)
}

fn main() -> anyhow::Result<()> {
    // As the worker binary does: before the runtime's threads start.
    gpu_worker::memory::reuse_freed_memory();
    tokio::runtime::Runtime::new()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.in_process {
        pipeline_bench::run(&PipelineBenchArgs {
            batches: args.batches.clone(),
            images: args.images,
            weights_dir: args.weights_dir.clone(),
            device: args.device.clone(),
            align: Alignment::default(),
            no_header: false,
            detector: args.detector,
            centerface_max_side: None,
        })?;
        return Ok(());
    }
    let demos = facematch_perf::demo_jpegs(&args.weights_dir)?;
    println!("| max batch | images | images/s |");
    println!("| ---: | ---: | ---: |");
    for &batch in &args.batches {
        let rate = measure(&args, batch, &demos).await?;
        println!("| {batch} | {} | {rate:.2} |", args.images);
    }
    Ok(())
}
