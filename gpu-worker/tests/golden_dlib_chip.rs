//! The dlib crop against dlib itself: for each face of the demo images, the chip dlib's
//! `get_face_chip(img, shape, 150, 0.25)` cut from the same landmarks
//! (`tests/golden/dlib/`, made by `scripts/make-dlib-golden.py`) and ours must be within one
//! grey level mean absolute difference, and the recognition net's descriptors of the two
//! chips within 1e-3 L2. sample3 enlarged 2× and 4× (Triangle filter) covers the chips dlib
//! cuts from a pyramid level.

mod common;

use candle_core::{Module, Tensor};
use common::*;
use gpu_worker::{
    PipelineOptions, decode_image,
    pipeline::{
        Normalize,
        dlib_chip::{ChipDetails, extract_chip},
    },
};
use serde_json::Value;

const SIZE: usize = 150;

fn golden_chips() -> (std::path::PathBuf, Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/dlib");
    let text =
        std::fs::read_to_string(dir.join("chips.json")).expect("tests/golden/dlib/chips.json");
    (dir, serde_json::from_str(&text).expect("chips.json"))
}

fn normalised(chip: &[f32]) -> Vec<f32> {
    chip.iter()
        .enumerate()
        .map(|(i, &v)| Normalize::MeanRgb.apply(i % 3, v))
        .collect()
}

#[test]
fn dlib_chips_and_their_descriptors_match_dlib() {
    let (dir, golden) = golden_chips();
    let faces = golden["faces"].as_array().expect("faces");
    assert!(faces.len() >= 6, "one face per demo image at least");
    let mut ours_all = Vec::new();
    let mut dlib_all = Vec::new();
    let mut image_cache: Option<(String, image::RgbImage)> = None;
    for face in faces {
        let name = face["image"].as_str().expect("image");
        let scale = face["scale"]
            .as_u64()
            .and_then(|s| u32::try_from(s).ok())
            .expect("scale");
        let key = format!("{name}×{scale}");
        if image_cache.as_ref().is_none_or(|(n, _)| *n != key) {
            let bytes = std::fs::read(weights_dir().join("demo").join(name)).expect("demo image");
            let img = decode_image(&bytes).expect("decode");
            let img = if scale == 1 {
                img
            } else {
                let (w, h) = (img.width() * scale, img.height() * scale);
                image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle)
            };
            image_cache = Some((key, img));
        }
        let img = &image_cache.as_ref().expect("decoded").1;
        let mut pts = [[0f64; 2]; 68];
        for (p, v) in pts
            .iter_mut()
            .zip(face["landmarks"].as_array().expect("landmarks"))
        {
            *p = [v[0].as_f64().expect("x"), v[1].as_f64().expect("y")];
        }
        let ours = extract_chip(img, &ChipDetails::for_face(&pts, SIZE, 0.25));
        let chip = face["chip"].as_str().expect("chip");
        let dlib: Vec<f32> = image::open(dir.join(chip))
            .expect("golden chip")
            .to_rgb8()
            .into_raw()
            .into_iter()
            .map(f32::from)
            .collect();
        assert_eq!(ours.len(), dlib.len(), "{chip}: size");
        let mad = ours
            .iter()
            .zip(&dlib)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / ours.len() as f32;
        println!("{chip}: mean |ours - dlib| = {mad:.4} grey levels");
        assert!(
            mad <= 1.0,
            "{chip}: chip differs from dlib's by {mad} grey levels on average"
        );
        ours_all.extend(normalised(&ours));
        dlib_all.extend(normalised(&dlib));
    }

    let p = pipeline(PipelineOptions::default());
    let (_, _, recognition) = p.networks();
    let describe = |buf: Vec<f32>| {
        let x =
            Tensor::from_vec(buf, (faces.len(), SIZE, SIZE, 3), &test_device()).expect("tensor");
        recognition
            .forward(&x)
            .and_then(|d| d.to_vec2::<f32>())
            .expect("descriptors")
    };
    let (ours, dlib) = (describe(ours_all), describe(dlib_all));
    for (face, (a, b)) in faces.iter().zip(ours.iter().zip(&dlib)) {
        let l2 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f32>()
            .sqrt();
        println!("{}: descriptor L2 to dlib's chip's = {l2:e}", face["chip"]);
        assert!(l2 <= 1e-3, "{}: descriptor L2 {l2}", face["chip"]);
    }
}
