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

/// CenterFace's boxes give face-api's 68-point net crops close to the SSD's it was made for:
/// on the demo images every golden face is found; the median face's landmarks lie within
/// 2.5 % of its width of face-api's golden ones (20 of 22 within 5 %: two faces turned from
/// the camera get other landmarks from any other box) and its face-api-crop descriptor within
/// 0.12 of the golden one. Boxes mapped to the SSD's come closer still, but separate people
/// less well (`perf/RESULTS.md`), so they are not the default.
#[test]
fn centerface_boxes_give_the_landmark_net_face_apis_crops() {
    let inputs = golden::GoldenInputs::of_workspace();
    let samples = golden::load_samples(&inputs).expect("demo images");
    let rows = golden::landmark_box(&inputs.weights_dir, &samples, &golden::test_device())
        .expect("the checks run");
    assert_rows(&rows);
}
