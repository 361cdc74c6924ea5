//! The CenterFace port against the pinned ONNX model run by onnxruntime
//! (`tests/golden/centerface/make_golden.py`): raw output maps on a synthetic input within
//! 1e-3; on three PNG crops of a demo photo (a face in profile, one looking down in grey, one
//! loosely framed) the same faces, boxes and landmarks within 0.05 px; on the six demo photos
//! every reference face above 0.6 found again at IoU ≥ 0.95, landmarks within 2 % of the
//! face's width (Pillow and the `image` crate decode JPEG a little differently).

use facematch_testkit::golden::{self, assert_rows, paths};

#[test]
fn centerface_matches_its_reference_run() {
    let rows = golden::centerface(
        &paths::weights_dir(),
        &paths::centerface_golden_dir(),
        &golden::test_device(),
    )
    .expect("the checks run");
    assert_rows(&rows);
}
