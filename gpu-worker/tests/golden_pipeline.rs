//! End to end on `golden/image-rs/sample1..6` (pixels decoded by the `image` crate), run as
//! batches through the batched API: same faces (paired by IoU ≥ 0.9), boxes and landmarks
//! within 0.5 px, descriptors within 1e-3 L2.

mod common;

use common::*;
use gpu_worker::{
    Alignment, Face, PipelineOptions, decode_image, pipeline::BBox, weights::sha256_hex,
};
use serde_json::Value;

fn bbox(v: &Value) -> BBox {
    let f = |k: &str| v[k].as_f64().expect("box field");
    BBox {
        x: f("x"),
        y: f("y"),
        width: f("width"),
        height: f("height"),
    }
}

fn check_image(i: usize, faces: &[Face], g: &Value) {
    let gfaces = g["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), gfaces.len(), "sample{i}: face count");
    for gf in gfaces {
        let gb = bbox(&gf["box"]);
        let (f, iou) = faces
            .iter()
            .map(|f| {
                let b = BBox {
                    x: f64::from(f.bbox[0]),
                    y: f64::from(f.bbox[1]),
                    width: f64::from(f.bbox[2]),
                    height: f64::from(f.bbox[3]),
                };
                (f, b.iou(&gb))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("a face");
        assert!(
            iou >= 0.9,
            "sample{i}: no face pairs with golden box {gb:?} (best IoU {iou})"
        );
        let db = [gb.x, gb.y, gb.width, gb.height]
            .iter()
            .zip(f.bbox)
            .map(|(a, b)| (a - f64::from(b)).abs())
            .fold(0.0, f64::max);
        let dl = gf["landmarks"]
            .as_array()
            .expect("landmarks")
            .iter()
            .zip(&f.landmarks)
            .map(|(q, p)| {
                let (qx, qy) = (q[0].as_f64().expect("x"), q[1].as_f64().expect("y"));
                (qx - f64::from(p[0])).hypot(qy - f64::from(p[1]))
            })
            .fold(0.0, f64::max);
        let dd = l2(&f.descriptor, &f32s(&gf["descriptor"]));
        println!(
            "sample{i}: score {:.5} |dbox| {db:.2e} px |dlandmark| {dl:.2e} px |ddesc| {dd:.2e}",
            f.score
        );
        assert!(
            db <= 0.5 && dl <= 0.5 && dd <= 1e-3,
            "sample{i}: box {db}, landmarks {dl}, desc {dd}"
        );
    }
}

fn load_samples() -> Vec<(image::RgbImage, Value)> {
    (1..=6)
        .map(|i| {
            let bytes = std::fs::read(demo_image(i)).expect("read demo image");
            let img = decode_image(&bytes).expect("decode demo image");
            let g = golden(&format!("image-rs/sample{i}.json"));
            assert_eq!(
                sha256_hex(img.as_raw()),
                g["rgb_sha256"].as_str().expect("rgb_sha256"),
                "sample{i}: decoded pixels differ from the golden decoder's"
            );
            (img, g)
        })
        .collect()
}

#[test]
fn demo_images_match_golden_in_batches() {
    let samples = load_samples();
    // The golden descriptors are face-api's, made with its crop.
    let p = pipeline(PipelineOptions {
        align: Alignment::FaceApi,
        ..PipelineOptions::default()
    });
    let images: Vec<image::RgbImage> = samples.iter().map(|(img, _)| img.clone()).collect();
    // Batches of 4 and 2, so both a multi-image batch and a ragged tail are covered.
    let mut faces = Vec::new();
    for chunk in images.chunks(4) {
        faces.extend(p.run(chunk).expect("pipeline"));
    }
    for (i, ((_, g), f)) in samples.iter().zip(&faces).enumerate() {
        check_image(i + 1, f, g);
    }
}

#[test]
fn dlib_alignment_gives_same_faces_and_other_descriptors() {
    let samples = load_samples();
    let p = pipeline(PipelineOptions {
        align: Alignment::Dlib,
        ..PipelineOptions::default()
    });
    let images: Vec<image::RgbImage> = samples.iter().take(2).map(|(img, _)| img.clone()).collect();
    let faces = p.run(&images).expect("pipeline");
    for ((_, g), f) in samples.iter().zip(&faces) {
        let gfaces = g["faces"].as_array().expect("faces");
        assert_eq!(f.len(), gfaces.len());
        for face in f {
            let norm = face.descriptor.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!(norm > 0.5 && norm < 3.0, "dlib descriptor norm {norm}");
        }
    }
}
