//! Each network on `golden/synthetic.json` (decoder-independent input at the exact net size).

mod common;

use candle_core::{Module, Tensor};
use common::*;
use gpu_worker::{
    PipelineOptions,
    pipeline::{
        detection::decode_box,
        preprocess::{CropRect, Normalize, pad_resize_into},
    },
};

fn input(size: u32, norm: Normalize) -> Tensor {
    let img = synthetic_image(size);
    let n = size as usize;
    let mut buf = vec![0f32; n * n * 3];
    pad_resize_into(&img, CropRect::full(&img), false, n, norm, &mut buf);
    Tensor::from_vec(buf, (1, n, n, 3), &test_device()).expect("tensor")
}

#[test]
fn networks_match_synthetic_golden() {
    let g = golden("synthetic.json");
    let p = pipeline(PipelineOptions::default());
    let (ssd, lm, rec) = p.networks();

    let out = ssd.forward(&input(512, Normalize::Ssd)).expect("ssd");
    let scores = out
        .scores
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .expect("scores");
    let enc = out
        .box_encodings
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .expect("enc");
    let boxes: Vec<f32> = ssd
        .anchors()
        .iter()
        .zip(enc.chunks_exact(4))
        .flat_map(|(a, e)| decode_box([e[0], e[1], e[2], e[3]], *a))
        .collect();
    let gs = b64_f32(g["ssd_512"]["scores_f32le_b64"].as_str().expect("scores"));
    let gb = b64_f32(g["ssd_512"]["boxes_f32le_b64"].as_str().expect("boxes"));
    let (ds, db) = (max_abs_diff(&scores, &gs), max_abs_diff(&boxes, &gb));
    println!("ssd: scores max|d| {ds:e}, boxes max|d| {db:e}");
    assert!(ds <= 1e-4 && db <= 1e-4, "ssd scores {ds}, boxes {db}");

    let raw = lm
        .forward(&input(112, Normalize::MeanRgb))
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .expect("landmarks");
    let dl = max_abs_diff(&raw, &f32s(&g["landmark68_112"]["raw136"]));
    println!("landmarks: raw136 max|d| {dl:e}");
    assert!(dl <= 1e-4, "landmarks {dl}");

    let d = rec
        .forward(&input(150, Normalize::MeanRgb))
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .expect("descriptor");
    let dd = l2(&d, &f32s(&g["recognition_150"]["descriptor"]));
    println!("recognition: descriptor L2 {dd:e}");
    assert!(dd <= 1e-4, "descriptor {dd}");
}
