//! End to end on `golden/image-rs/sample1..6` (pixels decoded by the `image` crate, which
//! must equal the golden decoder's), run as batches of 4 and 2 through the batched API: same
//! faces (paired by IoU ≥ 0.9), boxes and landmarks within 0.5 px, descriptors within 1e-3 L2.

use facematch_testkit::golden::{self, GoldenInputs, assert_rows, test_pipeline};
use gpu_worker::Alignment;

#[test]
fn demo_images_match_golden_in_batches() {
    let samples = golden::load_samples(&GoldenInputs::of_workspace()).expect("demo images");
    // The golden descriptors are face-api's, made with its crop.
    let rows = golden::pipeline_face_api(&test_pipeline(Alignment::FaceApi), &samples)
        .expect("pipeline runs");
    assert_rows(&rows);
}

#[test]
fn dlib_alignment_gives_same_faces_and_other_descriptors() {
    let samples = golden::load_samples(&GoldenInputs::of_workspace()).expect("demo images");
    let row =
        golden::pipeline_dlib(&test_pipeline(Alignment::Dlib), &samples).expect("pipeline runs");
    assert_rows(&[row]);
}
