//! Where the golden comparisons read their inputs in this workspace.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The converted weights and demo images (`model-weights/`, `scripts/fetch-weights.sh`).
pub fn weights_dir() -> PathBuf {
    workspace().join("model-weights")
}

/// face-api's golden outputs, kept in the repository: `FACEMATCH_GOLDEN_DIR` overrides them
/// (to compare against another generation of the same files).
pub fn golden_dir() -> PathBuf {
    let dir = std::env::var_os("FACEMATCH_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("gpu-worker/tests/golden/faceapi"));
    assert!(
        dir.join("synthetic.json").is_file(),
        "golden files not found in {}: FACEMATCH_GOLDEN_DIR must name a folder like \
         gpu-worker/tests/golden/faceapi",
        dir.display()
    );
    dir
}

/// The CenterFace detector's reference outputs and crops, kept in the repository.
pub fn centerface_golden_dir() -> PathBuf {
    workspace().join("gpu-worker/tests/golden/centerface")
}

/// dlib's golden chips, kept in the repository.
pub fn dlib_golden_dir() -> PathBuf {
    workspace().join("gpu-worker/tests/golden/dlib")
}
