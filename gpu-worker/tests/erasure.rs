//! Forgetting an image on the real services with two workers: `DELETE /images/{hash}` leaves no
//! key, value or face-log entry holding its hash or descriptor, the workers' indexes drop its
//! faces (a running one on its next catch-up, a restarted one never loads them), a job of the
//! image that is still queued writes nothing, a re-upload is a new scan, and a mixed run of
//! scans and erasures leaves the collection consistent.

use std::{collections::BTreeMap, time::Duration};

use facematch_core::{ImageHash, store::redis};
use facematch_testkit::{
    System, images::face_crop, paths::demo, wait_for_jobs, within, worker_metrics,
};
use image::ImageFormat;
use poem::http::Method;

const WAIT: Duration = Duration::from_secs(120);

/// A stream's entries as `XRANGE` answers them: id, then field/value pairs.
type StreamEntries = Vec<(String, Vec<(String, Vec<u8>)>)>;

/// `DELETE /images/{hash}` (auth off: the `default` collection); its JSON answer.
async fn erase(sys: &System, hash: ImageHash) -> (u16, serde_json::Value) {
    let answer = sys
        .send_as(None, Method::DELETE, &format!("/images/{hash}"), vec![])
        .await;
    (answer.status, answer.body)
}

/// The descriptor bytes of an image's faces as they sit in `facelog`.
async fn logged_descriptors(sys: &System, hash: ImageHash) -> Vec<Vec<u8>> {
    let page = sys
        .store
        .read_facelog(None, None, 100_000)
        .await
        .expect("facelog");
    page.faces
        .iter()
        .filter(|f| f.hash == hash)
        .map(|f| f.descriptor.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect()
}

async fn index_faces(metrics: &str) -> f64 {
    worker_metrics(metrics).await["facematch_worker_index_faces"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_crop_leaves_no_trace_and_no_worker_matches_it_again() {
    within(async {
        let sys = System::new("erase").await;
        let (args, first_metrics) = sys.worker_args_with_metrics(4);
        let first = sys.start_worker(args);
        let photo = sys.scan("photo.jpg", demo(1)).await;
        let crop = sys
            .scan("crop.png", face_crop(1, 0, 1.0, ImageFormat::Png))
            .await;
        for h in [photo, crop] {
            assert_eq!(sys.wait_final(h, WAIT).await["state"], "done");
        }
        assert_eq!(sys.matches(photo).await, vec!["crop.png"]);
        // A second worker loads the whole log, the crop's face included.
        let (args, second_metrics) = sys.worker_args_with_metrics(4);
        let second = sys.start_worker(args);
        sys.wait_scan_consumers(2, WAIT).await;
        assert_eq!(index_faces(&second_metrics).await, 4.0, "3 + 1 faces");
        let descriptors = logged_descriptors(&sys, crop).await;
        assert_eq!(descriptors.len(), 1);

        let (status, body) = erase(&sys, crop).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (
                body["names"].as_u64(),
                body["faces"].as_u64(),
                body["matches"].as_u64()
            ),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(sys.matches(photo).await, Vec::<String>::new());
        assert_eq!(sys.get(&format!("/images/{crop}")).await.0, 404);
        assert_eq!(
            erase(&sys, crop).await.0,
            404,
            "a second delete is harmless"
        );
        let crop_text = crop.to_string();
        for (key, value) in sys.redis_dump().await {
            assert!(!key.contains(&crop_text), "{key} names the erased image");
            assert!(!value.contains(&crop_text), "{key} holds the erased hash");
        }
        let mut conn = sys.store.conn().await.expect("redis");
        let log: StreamEntries = redis::cmd("XRANGE")
            .arg(sys.store.keys().facelog())
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .expect("xrange");
        for (id, fields) in &log {
            for (_, value) in fields {
                assert!(
                    !descriptors.contains(value),
                    "facelog entry {id} holds the erased descriptor"
                );
            }
        }

        // The second worker alone: it held the crop's face and drops it on its next catch-up.
        first.stop().await;
        let new = sys
            .scan("new.jpg", face_crop(1, 0, 0.8, ImageFormat::Jpeg))
            .await;
        assert_eq!(sys.wait_final(new, WAIT).await["state"], "done");
        assert_eq!(sys.matches(new).await, vec!["photo.jpg"]);
        assert_eq!(
            index_faces(&second_metrics).await,
            4.0,
            "3 + 1 new, the crop's dropped"
        );
        assert!(
            index_faces(&first_metrics).await >= 4.0,
            "the first kept its own count"
        );
        // A restarted worker never loads the erased face.
        let (args, third_metrics) = sys.worker_args_with_metrics(4);
        let third = sys.start_worker(args);
        second.stop().await;
        let again = sys
            .scan("again.png", face_crop(1, 0, 1.2, ImageFormat::Png))
            .await;
        assert_eq!(sys.wait_final(again, WAIT).await["state"], "done");
        assert_eq!(sys.matches(again).await, vec!["new.jpg", "photo.jpg"]);
        assert_eq!(
            index_faces(&third_metrics).await,
            5.0,
            "3 + new + again, never the crop"
        );
        third.stop().await;
        sys.cleanup().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_of_an_erased_image_writes_nothing_and_a_reupload_is_a_new_scan() {
    within(async {
        let sys = System::new("erase-queued").await;
        let crop_bytes = face_crop(2, 0, 1.0, ImageFormat::Png);
        let photo = sys.scan("photo.jpg", demo(2)).await;
        let crop = sys.scan("crop.png", crop_bytes.clone()).await;
        // Erased while its job is still in the queue (no worker yet).
        let (status, body) = erase(&sys, crop).await;
        assert_eq!(status, 200, "{body}");
        let (args, metrics) = sys.worker_args_with_metrics(4);
        let worker = sys.start_worker(args);
        assert_eq!(sys.wait_final(photo, WAIT).await["state"], "done");
        wait_for_jobs(&metrics, "gone", 1.0, WAIT, "the erased job is dropped").await;
        assert_eq!(sys.get(&format!("/images/{crop}")).await.0, 404);
        let crop_text = crop.to_string();
        assert!(
            sys.redis_dump()
                .await
                .iter()
                .all(|(k, v)| !k.contains(&crop_text) && !v.contains(&crop_text)),
            "the dropped job recreated nothing"
        );
        assert!(sys.matches(photo).await.is_empty());

        // The same bytes again: a new scan that works as any other.
        let again = sys.scan("crop-again.png", crop_bytes).await;
        assert_eq!(again, crop);
        assert_eq!(sys.wait_final(again, WAIT).await["state"], "done");
        assert_eq!(sys.matches(again).await, vec!["photo.jpg"]);
        assert_eq!(sys.matches(photo).await, vec!["crop-again.png"]);
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_and_erasures_interleaved_under_two_workers_leave_the_collection_consistent() {
    within(async {
        let sys = System::new("erase-mixed").await;
        let workers = [
            sys.start_worker(sys.worker_args(2)),
            sys.start_worker(sys.worker_args(2)),
        ];
        let mut images: Vec<(String, Vec<u8>)> = (1..=6)
            .map(|n| (format!("group{n}.jpg"), demo(n)))
            .collect();
        for (sample, face) in [(1, 0), (1, 1), (2, 0), (3, 0), (4, 1), (5, 0)] {
            images.push((
                format!("face-{sample}-{face}.png"),
                face_crop(sample, face, 0.9, ImageFormat::Png),
            ));
        }
        let mut live: BTreeMap<ImageHash, String> = BTreeMap::new();
        let mut erased = Vec::new();
        for (i, (name, bytes)) in images.into_iter().enumerate() {
            let hash = sys.scan(&name, bytes).await;
            live.insert(hash, name);
            // Every third scan, erase an earlier image while the workers run.
            if i % 3 == 2 {
                let victim = *live.keys().nth(i % live.len()).expect("an image");
                assert_eq!(erase(&sys, victim).await.0, 200);
                live.remove(&victim);
                erased.push(victim);
            }
        }
        for hash in live.keys() {
            assert_eq!(sys.wait_final(*hash, WAIT).await["state"], "done");
        }
        // Consistency of what is stored.
        let all: Vec<ImageHash> = live.keys().chain(&erased).copied().collect();
        let table = sys.match_table(&all).await;
        for gone in &erased {
            assert!(table[gone].is_empty(), "{gone} keeps matches");
            assert_eq!(sys.get(&format!("/images/{gone}")).await.0, 404);
        }
        for (hash, others) in &table {
            for (other, distance) in others {
                assert!(
                    live.contains_key(other),
                    "{hash} matches the erased {other}"
                );
                let back = table[other].get(hash);
                assert_eq!(back, Some(distance), "{hash} ↔ {other} recorded both ways");
            }
        }
        for (hash, name) in &live {
            let status = sys.get_json(&format!("/images/{hash}")).await;
            assert_eq!(status["names"], serde_json::json!([name]));
        }
        let mut conn = sys.store.conn().await.expect("redis");
        let files: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}file:*", sys.store.keys().scope()))
            .query_async(&mut conn)
            .await
            .expect("keys");
        assert_eq!(files.len(), live.len(), "no name points at an erased image");
        for owner in sys.facelog_owners().await {
            assert!(
                live.contains_key(&owner),
                "facelog holds a face of erased {owner}"
            );
        }
        for worker in workers {
            worker.stop().await;
        }
        sys.cleanup().await;
    })
    .await;
}

/// Erased while its job runs: the worker's Redis link is stalled at a proxy the test owns once
/// the job has started, the erasure goes through meanwhile, and the held writes then find no
/// record and write nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_erased_while_its_job_runs_stays_erased() {
    within(async {
        let sys = System::new("erase-running").await;
        let proxy =
            facematch_core::testing::Proxy::start("127.0.0.1:6379".parse().expect("addr")).await;
        let (mut args, metrics) = sys.worker_args_with_metrics(4);
        args.service.redis.redis_url = format!("redis://{}", proxy.addr);
        let worker = sys.start_worker(args);
        sys.wait_scan_consumers(1, WAIT).await;
        let bytes = demo(5);
        let hash = sys.scan("group.jpg", bytes.clone()).await;
        let deadline = std::time::Instant::now() + WAIT;
        while sys.attempts(hash).await == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the job did not start"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Started (its attempt counted): hold its next writes.
        proxy.stall();
        let held = proxy.held_chunks();
        while proxy.held_chunks() == held {
            assert!(
                std::time::Instant::now() < deadline,
                "no write was caught in the stall"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_ne!(
            sys.get_json(&format!("/images/{hash}")).await["state"],
            "done",
            "caught before it finished"
        );
        let (status, body) = erase(&sys, hash).await;
        assert_eq!(status, 200, "{body}");
        proxy.resume();
        wait_for_jobs(&metrics, "gone", 1.0, WAIT, "the job is dropped").await;
        assert_eq!(sys.get(&format!("/images/{hash}")).await.0, 404);
        let text = hash.to_string();
        assert!(
            sys.redis_dump()
                .await
                .iter()
                .all(|(k, v)| !k.contains(&text) && !v.contains(&text)),
            "the held writes recreated nothing"
        );
        assert!(
            sys.facelog_owners().await.is_empty(),
            "no face of it is logged"
        );
        // And the same bytes again are a new scan.
        let again = sys.scan("group-again.jpg", bytes).await;
        assert_eq!(sys.wait_final(again, WAIT).await["state"], "done");
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}

/// Both running workers hold an erased group photo's five faces; new images shared between
/// them (the broker gives each a share) make each catch up, and each index then holds the
/// other photo's faces and the new ones, never the five.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_running_worker_drops_an_erased_images_faces() {
    within(async {
        let sys = System::new("erase-each").await;
        let (args, first) = sys.worker_args_with_metrics(1);
        let one = sys.start_worker(args);
        let (args, second) = sys.worker_args_with_metrics(1);
        let two = sys.start_worker(args);
        sys.wait_scan_consumers(2, WAIT).await;
        let photo = sys.scan("photo.jpg", demo(1)).await;
        let group = sys.scan("group.jpg", demo(5)).await;
        for h in [photo, group] {
            assert_eq!(sys.wait_final(h, WAIT).await["state"], "done");
        }
        let faces = |status: serde_json::Value| status["face_count"].as_u64().expect("count");
        let photo_faces = faces(sys.get_json(&format!("/images/{photo}")).await) as f64;
        let group_faces = faces(sys.get_json(&format!("/images/{group}")).await) as f64;
        assert!(group_faces >= 4.0, "a group photo: {group_faces} faces");
        assert_eq!(erase(&sys, group).await.0, 200);

        let mut news = Vec::new();
        for (i, scale) in [0.8, 0.9, 1.1, 1.2].into_iter().enumerate() {
            let bytes = face_crop(1, i % 3, scale, ImageFormat::Png);
            news.push(sys.scan(&format!("new-{i}.png"), bytes).await);
        }
        for h in &news {
            assert_eq!(sys.wait_final(*h, WAIT).await["state"], "done");
        }
        for metrics in [&first, &second] {
            let held = index_faces(metrics).await;
            assert!(
                held > photo_faces && held <= photo_faces + news.len() as f64,
                "a worker holds {held} faces: the photo's {photo_faces} and new ones, not the \
                 erased {group_faces}"
            );
        }
        one.stop().await;
        two.stop().await;
        sys.cleanup().await;
    })
    .await;
}
