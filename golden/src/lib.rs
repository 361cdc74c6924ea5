//! The golden comparisons (a crate of their own so that the `gpu-check` benchmark uses them
//! without the dev-only test kit): each network on face-api's synthetic input, the whole pipeline on
//! the six demo images (face-api's crop, and dlib's), and our dlib chips against dlib's own.
//! Each check gives [`Row`]s (what was measured, the tolerance, whether it holds), on any
//! device: the golden tests assert every row, and `gpu-check` prints them on a GPU machine.

mod centerface;
mod dlib;
mod landmark_box;
mod networks;
pub mod paths;
mod pipeline;
mod read;

use std::path::PathBuf;

use anyhow::Context;
use candle_core::Device;
use gpu_worker::{Alignment, FacePipeline, PipelineOptions, pipeline::SsdOptions};

pub use self::{
    centerface::centerface,
    dlib::dlib_chips,
    landmark_box::landmark_box,
    networks::networks,
    pipeline::{load_samples, pipeline_dlib, pipeline_face_api},
    read::read_json,
};

/// Where the checks read their inputs.
#[derive(Debug, Clone)]
pub struct GoldenInputs {
    /// Converted weights and `demo/sample1..6.jpg`.
    pub weights_dir: PathBuf,
    /// face-api's golden outputs (`synthetic.json`, `image-rs/sample*.json`).
    pub golden_dir: PathBuf,
    /// dlib's chips (`chips.json` and its PNGs).
    pub dlib_dir: PathBuf,
    /// The CenterFace detector's reference run (`golden.json` and its PNG crops).
    pub centerface_dir: PathBuf,
}

impl GoldenInputs {
    /// The workspace's own: `model-weights/`, the golden files beside the checkout (or
    /// `FACEMATCH_GOLDEN_DIR`), `gpu-worker/tests/golden/dlib/`.
    pub fn of_workspace() -> Self {
        Self {
            weights_dir: paths::weights_dir(),
            golden_dir: paths::golden_dir(),
            dlib_dir: paths::dlib_golden_dir(),
            centerface_dir: paths::centerface_golden_dir(),
        }
    }
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

/// face-api's detector as it is (the golden outputs'), with `align`, on [`test_device`].
pub fn test_pipeline(align: Alignment) -> FacePipeline {
    let options = face_api_options(align);
    FacePipeline::load(&paths::weights_dir(), &test_device(), options).unwrap_or_else(|e| {
        panic!("{e}\n(the model tests need scripts/fetch-weights.sh to have run)")
    })
}

/// face-api's SSD without facematch's heuristics, as the golden outputs were made, and `align`.
fn face_api_options(align: Alignment) -> PipelineOptions {
    PipelineOptions {
        align,
        ..PipelineOptions::ssd(SsdOptions::face_api())
    }
}

/// Prints every row and fails the test, naming them, if any is out of tolerance.
pub fn assert_rows(rows: &[Row]) {
    for row in rows {
        println!(
            "{}: {} (tolerance {}){}",
            row.check,
            row.measured,
            row.tolerance,
            if row.ok { "" } else { "  FAILED" }
        );
    }
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.check.as_str())
        .collect();
    assert!(failed.is_empty(), "out of tolerance: {}", failed.join("; "));
}

/// One compared quantity.
#[derive(Debug, Clone)]
pub struct Row {
    pub check: String,
    pub measured: String,
    pub tolerance: String,
    pub ok: bool,
}

impl Row {
    pub(crate) fn new(
        check: impl Into<String>,
        measured: String,
        tolerance: &str,
        ok: bool,
    ) -> Self {
        Self {
            check: check.into(),
            measured,
            tolerance: tolerance.into(),
            ok,
        }
    }
}

/// Every check on `device`; an `Err` is an input that could not be read or a model that
/// failed to run, not a figure out of tolerance.
pub fn run(device: &Device, args: &GoldenInputs) -> anyhow::Result<Vec<Row>> {
    anyhow::ensure!(
        args.golden_dir.join("synthetic.json").is_file(),
        "golden files not found in {} (FACEMATCH_GOLDEN_DIR)",
        args.golden_dir.display()
    );
    let load = |align| {
        FacePipeline::load(&args.weights_dir, device, face_api_options(align))
            .with_context(|| format!("loading the models from {}", args.weights_dir.display()))
    };
    let face_api = load(Alignment::FaceApi)?;
    let dlib = load(Alignment::Dlib)?;
    let samples = load_samples(args)?;

    let mut rows = networks(
        &face_api,
        &read_json(&args.golden_dir.join("synthetic.json"))?,
    )?;
    rows.extend(pipeline_face_api(&face_api, &samples)?);
    rows.push(pipeline_dlib(&dlib, &samples)?);
    rows.extend(dlib_chips(&dlib, args)?);
    rows.extend(centerface(&args.weights_dir, &args.centerface_dir, device)?);
    rows.extend(landmark_box(&args.weights_dir, &samples, device)?);
    Ok(rows)
}
