//! Upload load against facematch's gateway or the peer's Flask server: distinct image bodies
//! (every request its own bytes, so its own hash and its own publish) to
//! `POST /scan/image/{name}`, closed-loop at fixed concurrencies and open-loop at fixed rates.
//! One JSON line per point (throughput, p50/p99/max, errors, server RSS and CPU) goes to
//! `--out`, and a table row to stdout.
//!
//! `upload-load --system facematch --addr 127.0.0.1:8080 --pids $(pidof gateway) \
//!      --sizes 102400 --concurrency 1,16,64 --seconds 30 --out results.jsonl`

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Parser;
use facematch_load::{bodies, http::Conn, procs, stats::Latency};
use serde::Serialize;

#[derive(Debug, Parser)]
struct Args {
    /// Name of the system under test, recorded with each point (`facematch`, `peer`, …).
    #[arg(long)]
    system: String,
    /// Where it listens.
    #[arg(long)]
    addr: SocketAddr,
    /// Its server processes (their children are counted too), for RSS and CPU.
    #[arg(long, value_delimiter = ',')]
    pids: Vec<u32>,
    /// The broker's processes (RabbitMQ's `beam.smp`), for its CPU.
    #[arg(long, value_delimiter = ',')]
    broker_pids: Vec<u32>,
    /// Body sizes in bytes (before the 36-byte tag that makes each body distinct).
    #[arg(long, value_delimiter = ',', default_values_t = [102_400usize])]
    sizes: Vec<usize>,
    /// Closed loop: connections, each sending its next request when the last is answered.
    #[arg(long, value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Open loop: requests per second, sent on schedule whatever the answers.
    #[arg(long, value_delimiter = ',')]
    rates: Vec<f64>,
    /// Measured seconds per point.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Unmeasured seconds before each point.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Open loop: requests in flight at most; a request due beyond it is counted `dropped`.
    #[arg(long, default_value_t = 1024)]
    max_outstanding: usize,
    /// Send the same bytes every time (the deduplicated path) instead of distinct bodies.
    #[arg(long)]
    same_bytes: bool,
    /// The photo every body is made from.
    #[arg(long, default_value = "model-weights/demo/sample1.jpg")]
    image: PathBuf,
    /// Appends one JSON line per point here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// An API key sent as `Authorization: Bearer` with every upload (a gateway with keys on).
    #[arg(long, env = "FACEMATCH_API_KEY", hide_env_values = true)]
    key: Option<String>,
}

/// One measured point.
#[derive(Debug, Serialize)]
struct Point {
    system: String,
    mode: &'static str,
    /// Concurrency (closed) or target rate (open).
    level: f64,
    body_bytes: usize,
    same_bytes: bool,
    seconds: f64,
    ok: u64,
    errors: BTreeMap<String, u64>,
    /// Answered 200 per second.
    throughput: f64,
    #[serde(flatten)]
    latency: Latency,
    server_rss_peak_mib: f64,
    /// Server CPU time per wall second (2.0 = both cores busy).
    server_cpu: f64,
    broker_cpu: f64,
    client_cpu: f64,
    load_avg: String,
}

/// What the workers of one point collect.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn record(&mut self, outcome: Result<Duration, String>) {
        match outcome {
            Ok(d) => self.latencies.push(d),
            Err(e) => *self.errors.entry(e).or_default() += 1,
        }
    }
}

/// Shared by every request of a run: the body and the counter that makes each distinct.
struct Source {
    jpeg: Vec<u8>,
    key: Option<String>,
    run: u64,
    next: AtomicU64,
    same: bool,
}

impl Source {
    async fn send(&self, conn: &mut Conn) -> Result<(), String> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let tag = bodies::tag(self.run, if self.same { 0 } else { n });
        let path = format!("/scan/image/load-{n}.jpg");
        let answer = conn
            .request("POST", &path, &[&self.jpeg[..2], &tag, &self.jpeg[2..]])
            .await
            .map_err(|e| format!("io: {}", e.kind()))?;
        if answer.status != 200 {
            return Err(format!("http {}", answer.status));
        }
        if !answer.body.starts_with(b"{\"hash\"") {
            return Err("bad answer".into());
        }
        Ok(())
    }
}

/// One request on a pooled (or new) connection; a failed connection is dropped.
async fn one(addr: SocketAddr, source: &Source, conn: &mut Option<Conn>) -> Result<(), String> {
    if conn.is_none() {
        *conn = Some(
            Conn::connect(addr)
                .await
                .map_err(|e| format!("connect: {}", e.kind()))?
                .with_bearer(source.key.as_deref()),
        );
    }
    let c = conn.as_mut().expect("set above: this is a bug");
    let result = source.send(c).await;
    // An error answer leaves the connection usable; a broken exchange does not.
    let broken = matches!(&result, Err(e) if !e.starts_with("http"));
    if broken || c.closed {
        *conn = None;
    }
    result
}

async fn closed_loop(
    addr: SocketAddr,
    source: Arc<Source>,
    concurrency: usize,
    from: Instant,
    until: Instant,
) -> Tally {
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let source = source.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut conn = None;
            loop {
                let start = Instant::now();
                if start >= until {
                    break;
                }
                let outcome = one(addr, &source, &mut conn).await;
                if start >= from {
                    tally.record(outcome.map(|()| start.elapsed()));
                }
            }
            tally
        }));
    }
    let mut all = Tally::default();
    for t in tasks {
        if let Ok(t) = t.await {
            all.latencies.extend(t.latencies);
            for (k, v) in t.errors {
                *all.errors.entry(k).or_default() += v;
            }
        }
    }
    all
}

/// Longest time an idle connection is reused, as an HTTP client's pool would: under the
/// servers' keep-alive limit (the gateway closes a connection idle for 10 s), so a request is
/// never written into a connection the server is closing. Without it the open loop's 30 s
/// points counted such races as `broken pipe` errors.
const POOL_IDLE: Duration = Duration::from_secs(4);

/// The most recently used idle connection not idle for longer than [`POOL_IDLE`]; older ones
/// are dropped.
fn reusable(pool: &mut Vec<(Conn, Instant)>) -> Option<Conn> {
    pool.retain(|(_, since)| since.elapsed() < POOL_IDLE);
    pool.pop().map(|(conn, _)| conn)
}

async fn open_loop(
    addr: SocketAddr,
    source: Arc<Source>,
    rate: f64,
    max_outstanding: usize,
    from: Instant,
    until: Instant,
) -> Tally {
    // Idle connections with the time they were put back.
    let pool: Arc<Mutex<Vec<(Conn, Instant)>>> = Arc::default();
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let outstanding = Arc::new(AtomicUsize::new(0));
    let begin = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0u64.. {
        let due = begin + Duration::from_secs_f64(i as f64 / rate);
        if due >= until {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let measured = due >= from;
        if outstanding.load(Ordering::Relaxed) >= max_outstanding {
            if measured {
                tally
                    .lock()
                    .expect("poisoned")
                    .record(Err("dropped".into()));
            }
            continue;
        }
        outstanding.fetch_add(1, Ordering::Relaxed);
        let (pool, tally, outstanding, source) = (
            pool.clone(),
            tally.clone(),
            outstanding.clone(),
            source.clone(),
        );
        tasks.spawn(async move {
            let mut conn = reusable(&mut pool.lock().expect("poisoned"));
            let start = Instant::now();
            let outcome = one(addr, &source, &mut conn).await;
            let took = start.elapsed();
            if let Some(c) = conn {
                pool.lock().expect("poisoned").push((c, Instant::now()));
            }
            outstanding.fetch_sub(1, Ordering::Relaxed);
            if measured {
                tally
                    .lock()
                    .expect("poisoned")
                    .record(outcome.map(|()| took));
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Arc::try_unwrap(tally)
        .map(|m| m.into_inner().expect("poisoned"))
        .unwrap_or_default()
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn point(args: &Args, source: Arc<Source>, mode: &'static str, level: f64) -> Point {
    let load = load_avg();
    let from = Instant::now() + Duration::from_secs_f64(args.warmup);
    let until = from + Duration::from_secs_f64(args.seconds);
    // Sample the server while the point runs.
    let (pids, broker) = (args.pids.clone(), args.broker_pids.clone());
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(from.into()).await;
        let (_, cpu0) = procs::sample(&pids);
        let broker0 = procs::sample(&broker).1;
        let self0 = procs::sample(&[std::process::id()]).1;
        let mut peak = 0;
        while Instant::now() < until {
            peak = peak.max(procs::sample(&pids).0);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let (rss, cpu1) = procs::sample(&pids);
        let broker1 = procs::sample(&broker).1;
        let self1 = procs::sample(&[std::process::id()]).1;
        (
            peak.max(rss),
            cpu1.saturating_sub(cpu0),
            broker1.saturating_sub(broker0),
            self1.saturating_sub(self0),
        )
    });
    let tally = match mode {
        "closed" => closed_loop(args.addr, source.clone(), level as usize, from, until).await,
        _ => {
            open_loop(
                args.addr,
                source.clone(),
                level,
                args.max_outstanding,
                from,
                until,
            )
            .await
        }
    };
    let wall = Instant::now().duration_since(from).as_secs_f64();
    let (rss, cpu, broker, own) = sampler.await.unwrap_or_default();
    let mut latencies = tally.latencies;
    Point {
        system: args.system.clone(),
        mode,
        level,
        body_bytes: source.jpeg.len() + bodies::TAG_LEN,
        same_bytes: args.same_bytes,
        seconds: args.seconds,
        ok: latencies.len() as u64,
        errors: tally.errors,
        throughput: latencies.len() as f64 / wall,
        latency: Latency::of(&mut latencies),
        server_rss_peak_mib: rss as f64 / (1 << 20) as f64,
        server_cpu: cpu.as_secs_f64() / args.seconds,
        broker_cpu: broker.as_secs_f64() / args.seconds,
        client_cpu: own.as_secs_f64() / args.seconds,
        load_avg: load,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let photo = image::open(&args.image)
        .with_context(|| format!("{} (run scripts/fetch-weights.sh)", args.image.display()))?;
    let mut out = match &args.out {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        ),
        None => None,
    };
    println!(
        "| system | mode | level | body | uploads/s | p50 ms | p99 ms | max ms | errors | server RSS MiB | CPU server/broker/client | load |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|");
    let points = args
        .concurrency
        .iter()
        .map(|&c| ("closed", c as f64))
        .chain(args.rates.iter().map(|&r| ("open", r)));
    let points: Vec<_> = points.collect();
    for &size in &args.sizes {
        let source = Arc::new(Source {
            jpeg: bodies::sized_jpeg(&photo, size)?,
            key: args.key.clone(),
            run: rand::random(),
            next: AtomicU64::new(0),
            same: args.same_bytes,
        });
        for &(mode, level) in &points {
            let p = point(&args, source.clone(), mode, level).await;
            let errors: u64 = p.errors.values().sum();
            println!(
                "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {} | {:.0} | {:.2}/{:.2}/{:.2} | {} |",
                p.system,
                p.mode,
                p.level,
                p.body_bytes,
                p.throughput,
                p.latency.p50_ms,
                p.latency.p99_ms,
                p.latency.max_ms,
                if errors == 0 {
                    "0".to_owned()
                } else {
                    format!("{:?}", p.errors)
                },
                p.server_rss_peak_mib,
                p.server_cpu,
                p.broker_cpu,
                p.client_cpu,
                p.load_avg,
            );
            if let Some(f) = &mut out {
                use std::io::Write;
                writeln!(f, "{}", serde_json::to_string(&p)?)?;
            }
        }
    }
    Ok(())
}
