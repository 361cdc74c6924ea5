//! Where an upload's time goes: the gateway's steps for one new image, run by themselves on the
//! real Redis and RabbitMQ through facematch-core (the same calls the gateway makes), each
//! timed: hash the body, claim the hash (Redis script), publish and await the broker's confirm,
//! mark it queued, record the filename (Redis scripts). Workers (tasks) run the sequence at
//! once, as that many concurrent uploads would.
//!
//! `upload-steps --concurrency 1,16 --seconds 10`

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use facematch_core::{
    ImageHash,
    amqp::{JobMeta, Publisher, Source, Topology},
    store::Store,
};
use facematch_load::{bodies, stats::Latency};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16])]
    concurrency: Vec<usize>,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[arg(long, default_value_t = 102_400)]
    size: usize,
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    #[arg(long, default_value = "model-weights/demo/sample1.jpg")]
    image: std::path::PathBuf,
}

type Steps = BTreeMap<&'static str, Vec<Duration>>;

async fn upload(
    store: &Store,
    publisher: &Publisher,
    body: &[u8],
    n: u64,
    steps: &mut Steps,
) -> anyhow::Result<()> {
    let mut t = Instant::now();
    let mut lap = |name: &'static str, steps: &mut Steps| {
        steps.entry(name).or_default().push(t.elapsed());
        t = Instant::now();
    };
    let hash = ImageHash::of(body);
    lap("1 hash", steps);
    store.claim_image(hash, Duration::from_secs(900)).await?;
    lap("2 redis claim", steps);
    let meta = JobMeta {
        hash,
        collection: Default::default(),
        epoch: None,
        name: format!("steps-{n}.jpg"),
        source: Source::Upload,
        content_type: "image/jpeg".into(),
        trace_headers: Vec::new(),
    };
    publisher.publish_job(&meta, body).await?;
    lap("3 publish + confirm", steps);
    store.confirm_queued(hash).await?;
    lap("4 redis confirm_queued", steps);
    store.record_file_name(&meta.name, hash).await?;
    lap("5 redis record_file_name", steps);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let photo = image::open(&args.image)?;
    let jpeg = Arc::new(bodies::sized_jpeg(&photo, args.size)?);
    let id = format!("steps{:08x}", rand::random::<u32>());
    let topology = Topology::new(format!("{id}."));
    let store = Store::open(&args.redis_url, &format!("{id}:"))?;
    let publisher = Publisher::start(args.amqp_url.clone(), topology.clone());
    anyhow::ensure!(
        publisher.wait_ready(Duration::from_secs(10)).await,
        "broker not ready"
    );
    let run: u64 = rand::random();
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for &c in &args.concurrency {
        let until = Instant::now() + Duration::from_secs_f64(args.seconds);
        let mut tasks = Vec::new();
        for _ in 0..c {
            let (store, publisher, jpeg, counter) = (
                store.clone(),
                publisher.clone(),
                jpeg.clone(),
                counter.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut steps = Steps::new();
                let mut total = Vec::new();
                while Instant::now() < until {
                    let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let body = bodies::tagged(&jpeg, run, n);
                    let t = Instant::now();
                    upload(&store, &publisher, &body, n, &mut steps).await?;
                    total.push(t.elapsed());
                }
                steps.insert("total", total);
                anyhow::Ok(steps)
            }));
        }
        let mut all = Steps::new();
        for t in tasks {
            for (k, v) in t.await?? {
                all.entry(k).or_default().extend(v);
            }
        }
        let n = all.get("total").map_or(0, Vec::len);
        println!(
            "concurrency {c}: {n} uploads, {:.0}/s (load {})",
            n as f64 / args.seconds,
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        println!("| step | mean ms | p50 ms | p99 ms | max ms |");
        println!("|---|---:|---:|---:|---:|");
        for (k, mut v) in all {
            let l = Latency::of(&mut v);
            println!(
                "| {k} | {:.3} | {:.3} | {:.3} | {:.2} |",
                l.mean_ms, l.p50_ms, l.p99_ms, l.max_ms
            );
        }
        // Keep the queue small between points.
        facematch_load::admin::purge(&args.amqp_url, &topology.scan_queue()).await?;
    }
    publisher.close().await;
    facematch_load::admin::cleanup(
        &args.amqp_url,
        &args.redis_url,
        &format!("{id}."),
        &format!("{id}:"),
    )
    .await?;
    Ok(())
}
