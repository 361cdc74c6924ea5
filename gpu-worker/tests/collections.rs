//! Collections with two workers on the real services and CPU models: a photo and a crop of the
//! same person match within each collection, never across, and a collection deleted and made
//! again starts with an empty face space in every worker's index.

use facematch_testkit::{System, images::face_crop, paths::demo, within};
use image::ImageFormat;
use poem::http::Method;

/// Uploads as `key` and returns the hash.
async fn scan(sys: &System, key: &str, name: &str, bytes: Vec<u8>) -> String {
    let answer = sys.upload_as(key, name, bytes).await;
    assert_eq!(answer.status, 200, "{name}: {}", answer.body);
    answer.body["hash"].as_str().expect("hash").to_owned()
}

/// Long-polls `GET /images/{hash}` as `key` until the image is `done`.
async fn done(sys: &System, key: &str, hash: &str) {
    for _ in 0..8 {
        let status = sys.get_as(key, &format!("/images/{hash}?wait=30")).await;
        assert_eq!(status.status, 200, "{}", status.body);
        match status.body["state"].as_str() {
            Some("done") => return,
            Some("failed") => panic!("{hash} failed: {}", status.body),
            _ => {}
        }
    }
    panic!("{hash} is not done after 4 minutes");
}

async fn matches(sys: &System, key: &str, hash: &str) -> serde_json::Value {
    sys.get_as(key, &format!("/match/{hash}")).await.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faces_match_within_their_collection_only() {
    within(async {
        let (sys, admin) = System::secured("collections-match").await;
        sys.create_collection(&admin, "team-a").await;
        sys.create_collection(&admin, "team-b").await;
        let a = sys
            .create_key(&admin, "team-a", &["scan", "read"])
            .await
            .key;
        let b = sys
            .create_key(&admin, "team-b", &["scan", "read"])
            .await
            .key;
        let workers = [
            sys.start_worker(sys.worker_args(2)),
            sys.start_worker(sys.worker_args(2)),
        ];

        let photo = demo(1);
        let crop = face_crop(1, 0, 1.0, ImageFormat::Png);
        let smaller = face_crop(1, 0, 0.7, ImageFormat::Jpeg);
        let a_photo = scan(&sys, &a, "a-photo.jpg", photo.clone()).await;
        let b_photo = scan(&sys, &b, "b-photo.jpg", photo).await;
        assert_eq!(a_photo, b_photo, "the same bytes, one hash, two records");
        let a_crop = scan(&sys, &a, "a-crop.png", crop.clone()).await;
        let b_crop = scan(&sys, &b, "b-crop.png", crop).await;
        // Only in A: B's images must never match it.
        let a_small = scan(&sys, &a, "a-small.jpg", smaller).await;
        for (key, hash) in [
            (&a, &a_photo),
            (&b, &b_photo),
            (&a, &a_crop),
            (&b, &b_crop),
            (&a, &a_small),
        ] {
            done(&sys, key, hash).await;
        }

        assert_eq!(
            matches(&sys, &a, &a_crop).await,
            serde_json::json!(["a-photo.jpg", "a-small.jpg"])
        );
        assert_eq!(
            matches(&sys, &b, &b_crop).await,
            serde_json::json!(["b-photo.jpg"])
        );
        assert_eq!(
            matches(&sys, &a, &a_photo).await,
            serde_json::json!(["a-crop.png", "a-small.jpg"])
        );
        assert_eq!(
            matches(&sys, &b, &b_photo).await,
            serde_json::json!(["b-crop.png"])
        );
        assert_eq!(
            matches(&sys, &b, &a_small).await,
            serde_json::json!([]),
            "unknown in B"
        );

        // Deleted and made again: the new A knows nothing of the old one's faces, in either
        // worker's index.
        let deleted = sys
            .send_as(Some(&admin), Method::DELETE, "/collections/team-a", vec![])
            .await;
        assert_eq!(deleted.status, 200, "{}", deleted.body);
        assert_eq!(deleted.body["images"], 3);
        sys.create_collection(&admin, "team-a").await;
        let a2 = sys
            .create_key(&admin, "team-a", &["scan", "read"])
            .await
            .key;
        let first = scan(
            &sys,
            &a2,
            "new-1.jpg",
            face_crop(1, 0, 0.9, ImageFormat::Jpeg),
        )
        .await;
        let second = scan(
            &sys,
            &a2,
            "new-2.png",
            face_crop(1, 0, 1.1, ImageFormat::Png),
        )
        .await;
        done(&sys, &a2, &first).await;
        done(&sys, &a2, &second).await;
        assert_eq!(
            matches(&sys, &a2, &second).await,
            serde_json::json!(["new-1.jpg"])
        );
        assert_eq!(
            matches(&sys, &a2, &first).await,
            serde_json::json!(["new-2.png"])
        );
        assert_eq!(
            matches(&sys, &b, &b_crop).await,
            serde_json::json!(["b-photo.jpg"]),
            "B untouched"
        );

        for worker in workers {
            worker.stop().await;
        }
        sys.cleanup().await;
    })
    .await;
}
