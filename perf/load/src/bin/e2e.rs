//! End to end: upload the 30-image set to one system, wait until every image is processed,
//! and record the time, images/s, each image's latency and faces, and the match pairs, so
//! facematch's worker and the peer's can be compared image by image.
//!
//! facematch is watched through its API (`GET /images/{hash}`, `GET /match/{hash}/details`);
//! the peer has no status route, so its Redis is read (db 3 holds an image's encodings once it
//! is processed, db 4 its matches).
//!
//! `e2e --system facematch --addr 127.0.0.1:8080 --out e2e.jsonl`
//! `e2e --system peer --label peer-2 --addr 127.0.0.1:18080 --peer-prefix run1. --out e2e.jsonl`

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Parser;
use facematch_load::{http::Client, images::image_set};
use redis::AsyncCommands;
use serde::Serialize;

#[derive(Debug, Parser)]
struct Args {
    /// `facematch` or `peer`.
    #[arg(long)]
    system: String,
    /// Recorded name of the run (default: the system's).
    #[arg(long)]
    label: Option<String>,
    #[arg(long)]
    addr: SocketAddr,
    /// The peer's key prefix (its PEER_PREFIX).
    #[arg(long, default_value = "peer.")]
    peer_prefix: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    #[arg(long, default_value = "model-weights/demo")]
    demo_dir: PathBuf,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Appends the run as one JSON line here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct ImageResult {
    name: String,
    hash: String,
    state: String,
    faces: usize,
    latency_ms: f64,
}

#[derive(Debug, Serialize)]
struct Run {
    label: String,
    system: String,
    images: Vec<ImageResult>,
    seconds: f64,
    images_per_s: f64,
    /// Pairs of image names that share a face, each once, sorted.
    pairs: Vec<(String, String)>,
    load_avg: String,
}

/// What a system says about one image once it is final: state and faces.
enum Seen {
    Pending,
    Final(String, usize),
}

async fn upload(conn: &mut Client, name: &str, bytes: &[u8]) -> anyhow::Result<String> {
    let answer = conn
        .request("POST", &format!("/scan/image/{name}"), &[bytes])
        .await?;
    anyhow::ensure!(answer.status == 200, "{name}: HTTP {}", answer.status);
    let json: serde_json::Value = serde_json::from_slice(&answer.body)?;
    json["hash"]
        .as_str()
        .map(str::to_owned)
        .context("no hash in the answer")
}

async fn facematch_seen(conn: &mut Client, hash: &str) -> anyhow::Result<Seen> {
    let answer = conn.request("GET", &format!("/images/{hash}"), &[]).await?;
    anyhow::ensure!(
        answer.status == 200,
        "status of {hash}: HTTP {}",
        answer.status
    );
    let json: serde_json::Value = serde_json::from_slice(&answer.body)?;
    let state = json["state"].as_str().unwrap_or_default();
    Ok(match state {
        "done" | "failed" => Seen::Final(
            state.to_owned(),
            json["faces"].as_array().map_or(0, Vec::len),
        ),
        _ => Seen::Pending,
    })
}

async fn facematch_matches(conn: &mut Client, hash: &str) -> anyhow::Result<Vec<String>> {
    let answer = conn
        .request("GET", &format!("/match/{hash}/details"), &[])
        .await?;
    anyhow::ensure!(
        answer.status == 200,
        "matches of {hash}: HTTP {}",
        answer.status
    );
    let json: serde_json::Value = serde_json::from_slice(&answer.body)?;
    Ok(json
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["hash"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let set = image_set(&args.demo_dir)?;
    let client = redis::Client::open(args.redis_url.as_str())?;
    let redis_db = |db: i64| {
        let client = client.clone();
        async move {
            let mut c = client.get_multiplexed_async_connection().await?;
            redis::cmd("SELECT")
                .arg(db)
                .query_async::<()>(&mut c)
                .await?;
            anyhow::Ok(c)
        }
    };
    let (mut encodings, mut matches) = if args.system == "peer" {
        (Some(redis_db(3).await?), Some(redis_db(4).await?))
    } else {
        (None, None)
    };
    let key = |h: &str| format!("{}{h}", args.peer_prefix);
    let load = load_avg();

    let mut conn = Client::new(args.addr);
    let started = Instant::now();
    let mut sent = Vec::new();
    for image in &set {
        let at = Instant::now();
        sent.push((upload(&mut conn, &image.name, &image.bytes).await?, at));
    }
    let mut results: Vec<Option<ImageResult>> = set.iter().map(|_| None).collect();
    let deadline = started + Duration::from_secs(args.timeout);
    while results.iter().any(Option::is_none) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "not every image was processed in time"
        );
        for (i, (hash, at)) in sent.iter().enumerate() {
            if results[i].is_some() {
                continue;
            }
            let seen = match &mut encodings {
                None => facematch_seen(&mut conn, hash).await?,
                Some(db) => match db.get::<_, Option<String>>(key(hash)).await? {
                    None => Seen::Pending,
                    Some(json) => {
                        let faces: Vec<serde_json::Value> = serde_json::from_str(&json)?;
                        Seen::Final("done".into(), faces.len())
                    }
                },
            };
            if let Seen::Final(state, faces) = seen {
                results[i] = Some(ImageResult {
                    name: set[i].name.clone(),
                    hash: hash.clone(),
                    state,
                    faces,
                    latency_ms: at.elapsed().as_secs_f64() * 1e3,
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();

    let name_of: BTreeMap<&str, &str> = sent
        .iter()
        .zip(&set)
        .map(|((h, _), image)| (h.as_str(), image.name.as_str()))
        .collect();
    let mut pairs = BTreeSet::new();
    for ((hash, _), image) in sent.iter().zip(&set) {
        let others: Vec<String> = match &mut matches {
            None => facematch_matches(&mut conn, hash).await?,
            Some(db) => db.smembers(key(hash)).await?,
        };
        for other in others {
            if let Some(&o) = name_of.get(other.as_str()) {
                let (a, b) = if image.name.as_str() < o {
                    (image.name.clone(), o.to_owned())
                } else {
                    (o.to_owned(), image.name.clone())
                };
                pairs.insert((a, b));
            }
        }
    }
    let run = Run {
        label: args.label.clone().unwrap_or_else(|| args.system.clone()),
        system: args.system.clone(),
        images: results.into_iter().flatten().collect(),
        seconds,
        images_per_s: set.len() as f64 / seconds,
        pairs: pairs.into_iter().collect(),
        load_avg: load,
    };
    let mut latencies: Vec<f64> = run.images.iter().map(|r| r.latency_ms).collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "{}: {} images in {:.1} s = {:.2} images/s; latency p50 {:.0} ms, max {:.0} ms; {} faces; {} match pairs (load {})",
        run.label,
        run.images.len(),
        run.seconds,
        run.images_per_s,
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        run.images.iter().map(|r| r.faces).sum::<usize>(),
        run.pairs.len(),
        run.load_avg,
    );
    if let Some(path) = &args.out {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(f, "{}", serde_json::to_string(&run)?)?;
    }
    Ok(())
}
