//! The worker's broker link cut again and again, or stalled (open, carrying nothing), through a
//! proxy the test owns: every accepted job still ends `done`, and a stall shows on `/healthz`.

use std::time::{Duration, Instant};

use facematch_core::testing::Proxy;
use facematch_testkit::{
    System,
    images::{eight_images, face_crop, no_face},
    within,
};
use image::ImageFormat;

const WAIT: Duration = Duration::from_secs(120);

async fn proxy_to_broker() -> Proxy {
    Proxy::start("127.0.0.1:5672".parse().expect("addr")).await
}

fn via(proxy: &Proxy) -> String {
    format!("amqp://guest:guest@{}/%2f", proxy.addr)
}

/// The cut loop: each cut returns every prefetched job to the queue (7 returns each),
/// which must not dead-letter any of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_loop_leaves_every_accepted_job_done() {
    const CUTS: usize = 7;
    within(async {
        let sys = System::new("cut-loop").await;
        let proxy = proxy_to_broker().await;
        let mut hashes = Vec::new();
        for (name, bytes) in eight_images() {
            hashes.push(sys.scan(&name, bytes).await);
        }
        let mut args = sys.worker_args(4);
        args.service.amqp.amqp_url = via(&proxy);
        let worker = sys.start_worker(args);
        for _ in 0..CUTS {
            sys.wait_scan_consumers(1, WAIT).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
            proxy.cut();
            sys.wait_scan_consumers(0, WAIT).await;
            proxy.restore();
        }
        sys.assert_done_and_logged_once(&hashes, WAIT).await;
        assert_eq!(sys.dead_letters().await, 0, "nothing dead-lettered");
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}

async fn healthz(base: &str) -> (u16, String) {
    match reqwest::get(format!("{base}/healthz")).await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

async fn wait_health(base: &str, want: u16, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = healthz(base).await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz still {status} {body:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_broker_link_fails_healthz_and_recovers() {
    within(async {
        let sys = System::new("stall").await;
        let proxy = proxy_to_broker().await;
        let (mut args, base) = sys.worker_args_with_metrics(2);
        args.service.amqp.amqp_url = via(&proxy);
        let worker = sys.start_worker(args);
        let before = sys.scan("before.png", no_face()).await;
        assert_eq!(sys.wait_final(before, WAIT).await["state"], "done");
        wait_health(&base, 200, Duration::from_secs(10)).await;

        proxy.stall();
        let stalled_at = Instant::now();
        let during = sys
            .scan("during.png", face_crop(1, 0, 1.0, ImageFormat::Png))
            .await;
        let body = wait_health(&base, 503, Duration::from_secs(20)).await;
        assert!(body.contains("no progress"), "{body}");
        eprintln!("/healthz failed {:?} into the stall", stalled_at.elapsed());
        // Still failing while the stall lasts (no false recovery).
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(healthz(&base).await.0, 503);

        proxy.resume();
        wait_health(&base, 200, Duration::from_secs(60)).await;
        let status = sys.wait_final(during, WAIT).await;
        assert_eq!(status["state"], "done", "{status}");
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}
