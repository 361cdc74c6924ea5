//! Chaos run against the real binaries (gateway, gpu-worker), the real RabbitMQ and Redis, with
//! every broker link going through a proxy this program owns on loopback. Bounded scenarios,
//! each stopping by itself:
//!
//! 1. crash loop: SIGKILL a worker 0.15 s after it starts consuming, `--kills` times;
//! 2. cut loop: cut the worker's broker link `--cuts` times while it works;
//! 3. worker stall: the worker's link open but silent for 12 s (`/healthz` must fail);
//! 4. gateway stall: the gateway's link silent for 12 s (`/readyz` must fail, uploads answer);
//! 5. slow clients: 30 uploads trickling one byte every 0.5 s while normal uploads go on;
//! 6. long-poll flood: 1,100 long-polls on a queued image from 11 addresses (run first, while
//!    no worker runs), `/healthz` from another client within 1 s;
//! 7. burst-then-silent: 4 uploads of 16 MiB that stop 1,000 bytes short, another client's
//!    upload answered 200 within 15 s ([`facematch_perf::crowding`]).
//!
//! Then one healthy worker finishes the work, and the run reports whether every accepted job
//! (answered 200) ended `done`: "nothing lost". Exit status 1 if anything was lost.
//!
//! `scripts/chaos.sh` builds and runs it (from the repository root).

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use facematch_core::{
    ImageHash,
    amqp::lapin::{options::QueueDeclareOptions, types::FieldTable},
    store::ImageState,
    testing::{Namespace, Proxy, TEST_AMQP_URL, remove_namespace},
};
use tokio::io::AsyncWriteExt;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "target/debug/gateway")]
    gateway_bin: PathBuf,
    #[arg(long, default_value = "target/debug/gpu-worker")]
    worker_bin: PathBuf,
    #[arg(long, default_value = "model-weights")]
    weights_dir: PathBuf,
    /// SIGKILLs of the crash loop.
    #[arg(long, default_value_t = 6)]
    kills: usize,
    /// Cuts of the worker's broker link.
    #[arg(long, default_value_t = 7)]
    cuts: usize,
    /// Jobs uploaded before each of the crash and cut loops.
    #[arg(long, default_value_t = 8)]
    jobs: usize,
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn via(proxy: &Proxy) -> String {
    format!("amqp://guest:guest@{}/%2f", proxy.addr)
}

struct Chaos {
    args: Args,
    ns: Namespace,
    http: reqwest::Client,
    gateway: String,
    gateway_pid: u32,
    worker_link: Proxy,
    demos: Vec<Vec<u8>>,
    uploaded: usize,
    accepted: Vec<ImageHash>,
    /// Answered 503 ("may be queued"): not promised, reported.
    maybe: usize,
    findings: Vec<String>,
}

impl Chaos {
    fn spawn_worker(&self) -> anyhow::Result<(Process, String)> {
        let port = free_port()?;
        let child = Command::new(&self.args.worker_bin)
            .env("FACEMATCH_AMQP_URL", via(&self.worker_link))
            .env("FACEMATCH_AMQP_PREFIX", format!("{}.", self.ns.id))
            .env("FACEMATCH_KEY_PREFIX", format!("{}:", self.ns.id))
            .env("FACEMATCH_WEIGHTS_DIR", &self.args.weights_dir)
            .env("FACEMATCH_DEVICE", "cpu")
            .env("FACEMATCH_MAX_BATCH", "4")
            .env("FACEMATCH_METRICS_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("start gpu-worker")?;
        Ok((Process(child), format!("http://127.0.0.1:{port}")))
    }

    async fn scan_consumers(&self) -> anyhow::Result<u32> {
        let channel = self.ns.inspector.create_channel().await?;
        let queue = channel
            .queue_declare(
                self.ns.topology.scan_queue().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let _ = channel.close(200, "inspected".into()).await;
        Ok(queue.consumer_count())
    }

    async fn wait_consumers(&self, n: u32) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.scan_consumers().await? != n {
            if Instant::now() > deadline {
                bail!("scan queue never had {n} consumers");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    async fn upload(&mut self, n: usize) {
        for _ in 0..n {
            let i = self.uploaded;
            self.uploaded += 1;
            let body = facematch_perf::unique_jpeg(&self.demos[i % self.demos.len()], i);
            let answer = self
                .http
                .post(format!("{}/scan/image/chaos-{i}.jpg", self.gateway))
                .body(body)
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            match answer {
                Ok(r) if r.status().is_success() => {
                    let json: serde_json::Value = r.json().await.unwrap_or_default();
                    match json["hash"].as_str().and_then(|h| h.parse().ok()) {
                        Some(hash) => self.accepted.push(hash),
                        None => self
                            .findings
                            .push(format!("upload {i}: 200 without a hash")),
                    }
                }
                Ok(r) if r.status().as_u16() == 503 => self.maybe += 1,
                Ok(r) => self.findings.push(format!("upload {i}: {}", r.status())),
                Err(e) => self.findings.push(format!("upload {i}: {e}")),
            }
        }
    }

    async fn status(&self, url: &str) -> u16 {
        match self
            .http
            .get(url)
            .timeout(Duration::from_secs(3))
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Whether `url` answers `want` within `within`.
    async fn answers(&self, url: &str, want: u16, within: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.status(url).await == want {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        None
    }

    async fn crash_loop(&mut self) -> anyhow::Result<()> {
        self.upload(self.args.jobs).await;
        for _ in 0..self.args.kills {
            let (mut worker, _) = self.spawn_worker()?;
            self.wait_consumers(1).await?;
            tokio::time::sleep(Duration::from_millis(150)).await;
            worker.0.kill()?;
            let _ = worker.0.wait();
            self.wait_consumers(0).await?;
        }
        println!("crash loop: {} kills", self.args.kills);
        Ok(())
    }

    async fn cut_loop(&mut self, worker_health: &str) -> anyhow::Result<()> {
        self.upload(self.args.jobs).await;
        for _ in 0..self.args.cuts {
            self.wait_consumers(1).await?;
            tokio::time::sleep(Duration::from_millis(150)).await;
            self.worker_link.cut();
            self.wait_consumers(0).await?;
            self.worker_link.restore();
        }
        println!("cut loop: {} cuts", self.args.cuts);
        self.upload(4).await;
        self.worker_link.stall();
        match self
            .answers(worker_health, 503, Duration::from_secs(12))
            .await
        {
            Some(t) => println!("worker stall: /healthz failed after {t:.1?}"),
            None => self
                .findings
                .push("worker stall: /healthz did not fail within 12 s".into()),
        }
        self.worker_link.resume();
        if self
            .answers(worker_health, 200, Duration::from_secs(60))
            .await
            .is_none()
        {
            self.findings
                .push("worker stall: /healthz did not recover within 60 s".into());
        }
        Ok(())
    }

    async fn gateway_stall(&mut self, gateway_link: &Proxy) {
        gateway_link.stall();
        let readyz = format!("{}/readyz", self.gateway);
        let started = Instant::now();
        self.upload(2).await;
        match self.answers(&readyz, 503, Duration::from_secs(10)).await {
            Some(_) => println!(
                "gateway stall: /readyz failed after {:.1?}",
                started.elapsed()
            ),
            None => self
                .findings
                .push("gateway stall: /readyz did not fail within 10 s".into()),
        }
        gateway_link.resume();
        if self
            .answers(&readyz, 200, Duration::from_secs(60))
            .await
            .is_none()
        {
            self.findings
                .push("gateway stall: /readyz did not recover within 60 s".into());
        }
    }

    async fn slow_clients(&mut self) -> anyhow::Result<()> {
        let addr = self.gateway.trim_start_matches("http://").to_owned();
        let mut trickles = Vec::new();
        for i in 0..30 {
            let addr = addr.clone();
            trickles.push(tokio::spawn(async move {
                let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
                    return;
                };
                let head = format!(
                    "POST /scan/image/slow-{i}.jpg HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 15000000\r\n\r\n"
                );
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for _ in 0..40 {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if s.write_all(&[0xFF]).await.is_err() {
                        return; // the gateway gave up on us: what it should do
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = self.accepted.len();
        self.upload(4).await;
        let served = self.accepted.len() - before;
        let rss = std::fs::read_to_string(format!("/proc/{}/status", self.gateway_pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
            })
            .unwrap_or_else(|| "?".into());
        println!(
            "slow clients: 30 trickling, {served}/4 normal uploads accepted, gateway RSS {rss} kB"
        );
        if served < 4 {
            self.findings
                .push(format!("slow clients: only {served}/4 uploads accepted"));
        }
        for t in trickles {
            t.abort();
        }
        Ok(())
    }

    /// The crowding scenarios, on an image still queued (no worker runs yet).
    async fn crowding(&mut self) {
        let before = self.accepted.len();
        self.upload(1).await;
        let addr = self.gateway.trim_start_matches("http://").to_owned();
        if let Some(hash) = self.accepted.get(before).map(ToString::to_string) {
            let (seen, findings) = facematch_perf::crowding::long_poll_flood(&addr, &hash).await;
            println!("{seen}");
            self.findings.extend(findings);
        }
        let normal = facematch_perf::unique_jpeg(&self.demos[0], 1_000_000);
        let (seen, findings) = facematch_perf::crowding::burst_then_silence(&addr, &normal).await;
        println!("{seen}");
        self.findings.extend(findings);
    }

    /// Waits for every accepted job to be final; returns (done, failed, not final).
    async fn settle(&self) -> anyhow::Result<(usize, usize, Vec<ImageHash>)> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let (mut done, mut failed, mut open) = (0, 0, Vec::new());
            for h in &self.accepted {
                match self.ns.store.image_status(*h).await?.map(|s| s.state) {
                    Some(ImageState::Done) => done += 1,
                    Some(ImageState::Failed) => failed += 1,
                    _ => open.push(*h),
                }
            }
            if open.is_empty() || Instant::now() > deadline {
                return Ok((done, failed, open));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let demos = (1..=4)
        .map(|n| std::fs::read(args.weights_dir.join(format!("demo/sample{n}.jpg"))))
        .collect::<Result<Vec<_>, _>>()
        .context("demo images: run scripts/fetch-weights.sh")?;
    let ns = Namespace::new("chaos").await;
    let broker: std::net::SocketAddr = "127.0.0.1:5672".parse()?;
    let gateway_link = Proxy::start(broker).await;
    let worker_link = Proxy::start(broker).await;
    let port = free_port()?;
    let gateway_process = Process(
        Command::new(&args.gateway_bin)
            .env("FACEMATCH_LISTEN", format!("127.0.0.1:{port}"))
            .env("FACEMATCH_AUTH", "off")
            .env("FACEMATCH_AMQP_URL", via(&gateway_link))
            .env("FACEMATCH_AMQP_PREFIX", format!("{}.", ns.id))
            .env("FACEMATCH_KEY_PREFIX", format!("{}:", ns.id))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("start gateway")?,
    );
    let mut chaos = Chaos {
        gateway_pid: gateway_process.0.id(),
        args,
        ns,
        http: reqwest::Client::new(),
        gateway: format!("http://127.0.0.1:{port}"),
        worker_link,
        demos,
        uploaded: 0,
        accepted: Vec::new(),
        maybe: 0,
        findings: Vec::new(),
    };
    let readyz = format!("{}/readyz", chaos.gateway);
    if chaos
        .answers(&readyz, 200, Duration::from_secs(60))
        .await
        .is_none()
    {
        bail!("the gateway did not get ready");
    }
    println!(
        "chaos run {} (broker {TEST_AMQP_URL} via proxies)",
        chaos.ns.id
    );

    let started = Instant::now();
    chaos.crowding().await;
    chaos.crash_loop().await?;
    let (_worker, worker_health) = chaos.spawn_worker()?;
    chaos.cut_loop(&format!("{worker_health}/healthz")).await?;
    chaos.gateway_stall(&gateway_link).await;
    chaos.slow_clients().await?;
    let (done, failed, open) = chaos.settle().await?;
    println!(
        "{} uploads: {} accepted, {} answered 503 (may be queued); accepted: {done} done, \
         {failed} failed, {} not final after {:.0?}",
        chaos.uploaded,
        chaos.accepted.len(),
        chaos.maybe,
        open.len(),
        started.elapsed()
    );
    for f in &chaos.findings {
        println!("finding: {f}");
    }
    let lost = failed + open.len();
    remove_namespace(&chaos.ns.store, &chaos.ns.topology, &chaos.ns.inspector).await;
    drop(gateway_process);
    if lost == 0 && chaos.findings.is_empty() {
        println!("nothing lost");
        Ok(())
    } else {
        for h in open {
            println!("not final: {h}");
        }
        bail!(
            "{lost} accepted jobs not done, {} findings",
            chaos.findings.len()
        )
    }
}
