//! A face-index failure never strands or loses a delivery: a batch whose catch-up fails is
//! requeued (its attempts forgiven) until the cause is repaired, then finishes; a worker that
//! cannot load its index at start exits non-zero and says why.
//!
//! The failure is a real one: a `facelog` entry whose descriptor is not a finite number, as a
//! damaged store would hold. The index refuses it whole.

use std::time::{Duration, Instant};

use facematch_core::store::redis;
use facematch_testkit::{Process, System, images::face_crop, paths::demo, within};
use image::ImageFormat;

const WAIT: Duration = Duration::from_secs(120);

/// Appends a damaged entry (a NaN in its descriptor) to the system's `facelog`; returns its id.
async fn append_damaged_entry(sys: &System) -> String {
    let mut descriptor = vec![0u8; 128 * 4];
    descriptor[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    let mut conn = sys.store.conn().await.expect("redis");
    redis::cmd("XADD")
        .arg(sys.store.keys().facelog())
        .arg("*")
        .arg("h")
        .arg(facematch_core::ImageHash::of(b"damaged").to_string())
        .arg("d")
        .arg(descriptor)
        .query_async(&mut conn)
        .await
        .expect("xadd")
}

async fn jobs_requeued(metrics_base: &str) -> f64 {
    let Ok(resp) = reqwest::get(format!("{metrics_base}/metrics")).await else {
        return 0.0;
    };
    let text = resp.text().await.unwrap_or_default();
    facematch_core::testing::parse_prometheus(&text)
        .ok()
        .and_then(|m| {
            m.get(r#"facematch_worker_jobs_total{outcome="requeued"}"#)
                .copied()
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_index_fails_is_requeued_until_repaired_then_done() {
    within(async {
        let sys = System::new("index-failure").await;
        let (args, metrics_base) = sys.worker_args_with_metrics(4);
        let worker = sys.start_worker(args);
        let group = sys.scan("group.jpg", demo(1)).await;
        assert_eq!(sys.wait_final(group, WAIT).await["state"], "done");

        let damaged = append_damaged_entry(&sys).await;
        let crops = [
            sys.scan("crop-0.png", face_crop(1, 0, 1.6, ImageFormat::Png))
                .await,
            sys.scan("crop-1.png", face_crop(1, 1, 1.6, ImageFormat::Png))
                .await,
        ];
        // Each run fails at the catch-up: the batch goes back to the queue, again and again.
        let deadline = Instant::now() + WAIT;
        while jobs_requeued(&metrics_base).await < 4.0 {
            assert!(
                Instant::now() < deadline,
                "the failed batch was not requeued"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for crop in crops {
            let status = sys.store.image_status(crop).await.expect("status");
            let state = status.map(|s| s.state.as_str()).unwrap_or_default();
            assert_eq!(
                state, "queued",
                "done past a damaged index, or failed for its fault"
            );
            assert!(
                sys.attempts(crop).await <= 1,
                "a failure of the index used up the job's poison budget"
            );
        }

        // Repaired: the next redelivery finishes both, matched with their photo both ways.
        let mut conn = sys.store.conn().await.expect("redis");
        let _: i64 = redis::cmd("XDEL")
            .arg(sys.store.keys().facelog())
            .arg(&damaged)
            .query_async(&mut conn)
            .await
            .expect("xdel");
        for crop in crops {
            let status = sys.wait_final(crop, WAIT).await;
            assert_eq!(status["state"], "done", "{status}");
            assert_eq!(status["face_count"], 1, "{status}");
        }
        assert_eq!(sys.matches(group).await, vec!["crop-0.png", "crop-1.png"]);
        for crop in crops {
            assert_eq!(sys.matches(crop).await, vec!["group.jpg"]);
        }
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_cannot_load_its_index_exits_non_zero_with_the_cause() {
    within(async {
        let sys = System::new("index-load").await;
        // A store of this worker's setting (a log without the record would be an old one's).
        sys.store
            .store_alignment(&gpu_worker::service::DescriptorSetting::default().to_string())
            .await
            .expect("alignment");
        let damaged = append_damaged_entry(&sys).await;
        let mut command = sys.worker_command(
            std::path::Path::new(env!("CARGO_BIN_EXE_gpu-worker")),
            2,
            &[],
        );
        command.stderr(std::process::Stdio::piped());
        let mut process = Process(command.spawn().expect("start gpu-worker"));
        let child = &mut process.0;
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the worker kept running");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(!status.success(), "exit status {status}");
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr piped"), &mut stderr)
            .expect("stderr");
        assert!(
            stderr.contains("cannot load the face index") && stderr.contains(&damaged),
            "{stderr}"
        );
        drop(process);
        sys.cleanup().await;
    })
    .await;
}
