//! Face thumbnails on the real services: each face kept by a worker has a small JPEG at
//! `GET /images/{hash}/faces/{n}.jpg`, a face that does not exist is 404, erasure removes them,
//! a worker with `FACEMATCH_FACE_THUMBNAILS=off` keeps none; and `GET /match/{hash}/details
//! ?faces=true` names the face pairs behind each match.

use std::time::Duration;

use facematch_core::ImageHash;
use facematch_testkit::{System, images::face_crop, paths::demo, within};
use gpu_worker::service::Thumbnails;
use image::ImageFormat;
use poem::http::Method;

const WAIT: Duration = Duration::from_secs(120);

/// Status, headers and body of `GET /images/{hash}/faces/{file}`.
async fn get_thumbnail(
    sys: &System,
    hash: ImageHash,
    file: &str,
) -> (u16, poem::http::HeaderMap, Vec<u8>) {
    let resp = sys
        .client
        .get(format!("/images/{hash}/faces/{file}"))
        .send()
        .await
        .0;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().into_vec().await.expect("body");
    (status, headers, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kept_face_has_a_small_jpeg_until_its_image_is_erased() {
    within(async {
        let sys = System::new("thumbs").await;
        let worker = sys.start_worker(sys.worker_args(4));
        let photo = sys.scan("group.jpg", demo(1)).await;
        let crop = sys
            .scan("crop.png", face_crop(1, 0, 1.0, ImageFormat::Png))
            .await;
        let status = sys.wait_final(photo, WAIT).await;
        assert_eq!(status["state"], "done", "{status}");
        assert_eq!(sys.wait_final(crop, WAIT).await["state"], "done");
        let faces = status["face_count"].as_u64().expect("face count") as u32;
        assert_eq!(faces, 3);

        for n in 0..faces {
            let (code, headers, jpeg) = get_thumbnail(&sys, photo, &format!("{n}.jpg")).await;
            assert_eq!(code, 200, "face {n}");
            assert_eq!(headers["content-type"], "image/jpeg");
            assert_eq!(headers["cache-control"], "private, max-age=300");
            assert!(jpeg.len() <= 8 * 1024, "face {n}: {} bytes", jpeg.len());
            assert_eq!(image::guess_format(&jpeg).ok(), Some(ImageFormat::Jpeg));
            let decoded = image::load_from_memory(&jpeg).expect("decodes");
            assert!(decoded.width() <= 96 && decoded.width() == decoded.height());
            assert!(decoded.width() >= 16, "a face, not a speck");
        }
        assert_eq!(
            get_thumbnail(&sys, photo, &format!("{faces}.jpg")).await.0,
            404
        );
        assert_eq!(get_thumbnail(&sys, photo, "0.png").await.0, 400);
        assert_eq!(get_thumbnail(&sys, photo, "01.jpg").await.0, 400);
        let unknown = ImageHash::of(b"never scanned");
        assert_eq!(get_thumbnail(&sys, unknown, "0.jpg").await.0, 404);

        // The face pairs behind the photo's match with its crop: one of the photo's faces and
        // the crop's only face, within the threshold.
        let (code, details) = sys.get(&format!("/match/{photo}/details?faces=true")).await;
        assert_eq!(code, 200, "{details}");
        assert_eq!(details[0]["hash"], crop.to_string(), "{details}");
        let pairs = details[0]["faces"].as_array().expect("face pairs");
        assert_eq!(pairs.len(), 1, "{details}");
        assert_eq!(pairs[0]["other_face"], 0);
        assert!(pairs[0]["face"].as_u64().expect("face") < 3);
        let distance = pairs[0]["distance"].as_f64().expect("distance");
        assert!((distance - details[0]["distance"].as_f64().expect("best")).abs() < 1e-4);
        let (_, plain) = sys.get(&format!("/match/{photo}/details")).await;
        assert!(plain[0].get("faces").is_none(), "only when asked: {plain}");

        let erased = sys
            .send_as(None, Method::DELETE, &format!("/images/{photo}"), vec![])
            .await;
        assert_eq!(erased.status, 200, "{}", erased.body);
        assert_eq!(get_thumbnail(&sys, photo, "0.jpg").await.0, 404);
        let left: Vec<String> = sys
            .redis_keys()
            .await
            .into_iter()
            .filter(|k| k.contains(&photo.to_string()))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_thumbnails_off_keeps_no_face_image() {
    within(async {
        let sys = System::new("nothumbs").await;
        let mut args = sys.worker_args(4);
        args.face_thumbnails = Thumbnails::Off;
        let worker = sys.start_worker(args);
        let photo = sys.scan("group.jpg", demo(1)).await;
        let status = sys.wait_final(photo, WAIT).await;
        assert_eq!(status["face_count"], 3, "{status}");
        for n in 0..3 {
            let (code, _, body) = get_thumbnail(&sys, photo, &format!("{n}.jpg")).await;
            assert_eq!(code, 404, "{}", String::from_utf8_lossy(&body));
        }
        assert!(
            !sys.redis_keys().await.iter().any(|k| k.contains("thumbs:")),
            "no thumbnail key"
        );
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}
