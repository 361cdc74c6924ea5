//! An engine thread that dies (a panic, injected through the worker's test hook) is the
//! worker's fault, not the images': no job is marked failed or charged an attempt, `/healthz`
//! answers 503, the worker exits with an error (non-zero for the binary), and a new worker
//! finishes every job.

use std::time::Duration;

use facematch_testkit::{System, images::face_crop, within};
use gpu_worker::service::ServeError;
use image::ImageFormat;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_dies_blames_no_job_reports_unhealthy_and_exits() {
    within(async {
        let sys = System::new("engine-fault").await;
        let hashes = [
            sys.scan("a.png", face_crop(1, 0, 1.0, ImageFormat::Png))
                .await,
            sys.scan("b.png", face_crop(2, 0, 1.0, ImageFormat::Png))
                .await,
        ];
        let (mut args, metrics) = sys.worker_args_with_metrics(4);
        args.test_engine_fault_after = Some(1);
        let worker = sys.start_worker(args);

        let ended = worker.exited(WAIT).await;
        assert!(matches!(ended, Err(ServeError::EngineStopped)), "{ended:?}");
        let health = reqwest::get(format!("{metrics}/healthz"))
            .await
            .expect("healthz");
        assert_eq!(health.status(), 503);
        assert!(health.text().await.expect("text").contains("engine"));
        for hash in hashes {
            let status = sys.get_json(&format!("/images/{hash}")).await;
            assert_eq!(status["state"], "queued", "no job is blamed: {status}");
            assert_eq!(sys.attempts(hash).await, 0, "no attempt is charged");
        }

        let worker = sys.start_worker(sys.worker_args(4));
        for hash in hashes {
            let status = sys.wait_final(hash, WAIT).await;
            assert_eq!(status["state"], "done", "{status}");
        }
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}
