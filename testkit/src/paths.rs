//! Where the tests' inputs are: the workspace, the converted weights and demo images
//! (`scripts/fetch-weights.sh`), and the golden files kept in the repository.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The converted weights (`model-weights/`).
pub fn weights_dir() -> PathBuf {
    workspace().join("model-weights")
}

/// A demo image's path; panics with the fix when `scripts/fetch-weights.sh` has not run.
pub fn demo_path(n: u32) -> PathBuf {
    let path = weights_dir().join(format!("demo/sample{n}.jpg"));
    assert!(
        path.is_file(),
        "{} is missing — run scripts/fetch-weights.sh",
        path.display()
    );
    path
}

/// A demo image's bytes.
pub fn demo(n: u32) -> Vec<u8> {
    let path = demo_path(n);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
