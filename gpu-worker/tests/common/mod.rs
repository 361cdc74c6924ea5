//! Shared helpers of the model tests: paths to the weights, demo images and golden files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candle_core::Device;
use gpu_worker::{FacePipeline, PipelineOptions};
use serde_json::Value;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn weights_dir() -> PathBuf {
    workspace_root().join("model-weights")
}

/// `FACEMATCH_GOLDEN_DIR`, else `../shared/models/golden` beside the workspace.
pub fn golden_dir() -> PathBuf {
    let dir = std::env::var_os("FACEMATCH_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/models/golden"));
    assert!(
        dir.join("synthetic.json").is_file(),
        "golden files not found in {}: set FACEMATCH_GOLDEN_DIR or put shared/ beside the checkout",
        dir.display()
    );
    dir
}

pub fn golden(name: &str) -> Value {
    let path = golden_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("golden json")
}

pub fn demo_image(i: usize) -> PathBuf {
    let p = weights_dir().join(format!("demo/sample{i}.jpg"));
    assert!(
        p.is_file(),
        "{} missing: run scripts/fetch-weights.sh first",
        p.display()
    );
    p
}

/// The device the model tests run on: `FACEMATCH_TEST_DEVICE` (`cpu`, `cuda`, `cuda:N`),
/// the CPU when unset, so the same golden tests check a CUDA build on a GPU machine. One
/// device per test binary (each CUDA device handle is its own context).
pub fn test_device() -> Device {
    static DEVICE: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let name = std::env::var("FACEMATCH_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
            gpu_worker::select_device(&name)
                .unwrap_or_else(|e| panic!("FACEMATCH_TEST_DEVICE={name}: {e}"))
        })
        .clone()
}

pub fn pipeline(options: PipelineOptions) -> FacePipeline {
    FacePipeline::load(&weights_dir(), &test_device(), options).unwrap_or_else(|e| {
        panic!("{e}\n(the model tests need scripts/fetch-weights.sh to have run)")
    })
}

/// Decodes standard base64 (the golden files' raw f32 arrays).
pub fn b64_f32(s: &str) -> Vec<f32> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c}"),
        }
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut bytes = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c) << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        bytes.extend(&acc.to_be_bytes()[1..1 + n]);
    }
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

/// The synthetic input of `synthetic.json`: `((x*x + 2*y*y + 4096*c) >> 5) & 255`.
pub fn synthetic_image(size: u32) -> image::RgbImage {
    image::RgbImage::from_fn(size, size, |x, y| {
        let v = |c: u32| (((x * x + 2 * y * y + 4096 * c) >> 5) & 255) as u8;
        image::Rgb([v(0), v(1), v(2)])
    })
}
