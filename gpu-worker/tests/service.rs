//! The worker service end to end: real gateway, RabbitMQ, Redis and CPU models.

use std::time::Duration;

use facematch_testkit::{
    MatchTable, System, assert_same_matches,
    images::{face_crop, no_face},
    paths::demo,
    within, worker_metrics,
};
use image::ImageFormat;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_face_crop_matches_its_photo_and_a_blank_image_matches_nothing() {
    within(async {
        let sys = System::new("crop").await;
        let mut args = sys.worker_args(4);
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        args.metrics_listen = format!("127.0.0.1:{metrics_port}").parse().expect("addr");
        let worker = sys.start_worker(args);
        let group = sys.scan("group.jpg", demo(1)).await;
        let crop_bytes = face_crop(1, 0, 1.0, ImageFormat::Png);
        let crop = sys.scan("crop.png", crop_bytes.clone()).await;
        let same = sys.scan("crop-copy.png", crop_bytes).await;
        assert_eq!(crop, same, "same bytes, same hash");
        let blank = sys.scan("blank.png", no_face()).await;

        let group_status = sys.wait_final(group, WAIT).await;
        assert_eq!(group_status["state"], "done", "{group_status}");
        assert_eq!(group_status["face_count"], 3);
        assert_eq!(group_status["faces"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            group_status["faces"][0]["landmarks"]
                .as_array()
                .map(Vec::len),
            Some(68)
        );
        let crop_status = sys.wait_final(crop, WAIT).await;
        assert_eq!(crop_status["state"], "done");
        assert_eq!(crop_status["face_count"], 1);
        let blank_status = sys.wait_final(blank, WAIT).await;
        assert_eq!(blank_status["state"], "done");
        assert_eq!(blank_status["face_count"], 0);

        assert_eq!(sys.matches(group).await, vec!["crop-copy.png", "crop.png"]);
        assert_eq!(sys.matches(crop).await, vec!["group.jpg"]);
        assert!(sys.matches(blank).await.is_empty());

        // The worker's /metrics parse and count what it did.
        let base = format!("http://127.0.0.1:{metrics_port}");
        let metrics = worker_metrics(&base).await;
        assert!(
            metrics[r#"facematch_worker_jobs_total{outcome="done"}"#] >= 3.0,
            "{metrics:?}"
        );
        assert!(metrics["facematch_worker_index_faces"] >= 4.0);
        assert!(metrics[r#"facematch_worker_inference_seconds_count{stage="detect"}"#] >= 1.0);
        assert!(metrics["facematch_worker_batch_size_count"] >= 1.0);
        assert!(metrics["facematch_worker_queue_seconds_count"] >= 3.0);
        let health = reqwest::get(format!("{base}/healthz"))
            .await
            .expect("healthz");
        assert!(health.status().is_success());
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}

/// Images where several show the same person: the original group photo, crops of one face
/// re-encoded and resized, another face, and other photos.
fn image_set() -> Vec<(String, Vec<u8>)> {
    vec![
        ("group1.jpg".into(), demo(1)),
        ("face-a.png".into(), face_crop(1, 0, 1.0, ImageFormat::Png)),
        (
            "face-a-small.jpg".into(),
            face_crop(1, 0, 0.7, ImageFormat::Jpeg),
        ),
        ("face-b.png".into(), face_crop(1, 1, 1.0, ImageFormat::Png)),
        ("group2.jpg".into(), demo(2)),
        ("face-c.jpg".into(), face_crop(2, 0, 0.8, ImageFormat::Jpeg)),
        ("group3.jpg".into(), demo(3)),
        ("blank.png".into(), no_face()),
    ]
}

async fn run_set(tag: &str, workers: usize) -> (Vec<facematch_core::ImageHash>, MatchTable) {
    let sys = System::new(tag).await;
    let running: Vec<_> = (0..workers)
        .map(|_| sys.start_worker(sys.worker_args(2)))
        .collect();
    let mut hashes = Vec::new();
    for (name, bytes) in image_set() {
        hashes.push(sys.scan(&name, bytes).await);
    }
    sys.assert_done_and_logged_once(&hashes, WAIT).await;
    let table = sys.match_table(&hashes).await;
    for w in running {
        w.stop().await;
    }
    sys.cleanup().await;
    (hashes, table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_find_exactly_the_matches_of_one() {
    within(async {
        let (hashes, one) = run_set("one-worker", 1).await;
        let (hashes2, two) = run_set("two-workers", 2).await;
        let (hashes3, again) = run_set("two-again", 2).await;
        assert_eq!(hashes, hashes2);
        assert_eq!(hashes, hashes3);
        assert_same_matches(&one, &two);
        assert_same_matches(&two, &again);
        // The set really has matches: the crops match their group photo and each other.
        let group1 = hashes[0];
        assert!(one[&group1].contains_key(&hashes[1]));
        assert!(one[&hashes[1]].contains_key(&hashes[2]));
        // Symmetric.
        for (a, row) in &one {
            for b in row.keys() {
                assert!(one[b].contains_key(a), "{a} → {b} but not back");
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_images_fail_alone_and_the_worker_goes_on() {
    within(async {
        let sys = System::new("hostile").await;
        let jpeg = demo(1);
        let truncated = jpeg[..jpeg.len() / 2].to_vec();
        let mut random = vec![0xFF, 0xD8, 0xFF, 0xE0];
        random.extend((0..5000).map(|_| rand::random::<u8>()));
        let good = face_crop(1, 0, 1.0, ImageFormat::Png);
        // Published before the worker starts, so they share its first batch.
        let bad = [
            sys.publish_raw("truncated.jpg", &truncated).await,
            sys.publish_raw("random.jpg", &random).await,
            sys.publish_raw(
                "bomb.png",
                &facematch_core::testing::png_claiming(16_000, 12_000),
            )
            .await,
        ];
        let good = sys.publish_raw("good.png", &good).await;
        let (args, metrics_base) = sys.worker_args_with_metrics(4);
        let worker = sys.start_worker(args);
        for h in bad {
            let status = sys.wait_final(h, WAIT).await;
            assert_eq!(status["state"], "failed", "{status}");
            assert!(
                status["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{status}"
            );
        }
        let status = sys.wait_final(good, WAIT).await;
        assert_eq!(
            status["state"], "done",
            "the rest of the batch completes: {status}"
        );
        // A message that is not a job (no message_id) is dead-lettered, not retried: rejected
        // by the scan consumer, then dropped (logged) by the dead-letter consumer.
        sys.publish_malformed(b"not a job").await;
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let metrics = worker_metrics(&metrics_base).await;
            let malformed = metrics
                .get(r#"facematch_worker_jobs_total{outcome="malformed"}"#)
                .copied()
                .unwrap_or(0.0);
            if malformed >= 2.0 && sys.dead_letters().await == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "malformed message not dead-lettered and dropped: {malformed}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Still running: a later job completes too.
        let later = sys.scan("later.png", no_face()).await;
        assert_eq!(sys.wait_final(later, WAIT).await["state"], "done");
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}
