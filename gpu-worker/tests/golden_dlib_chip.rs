//! The dlib crop against dlib itself: for each face of the demo images, the chip dlib's
//! `get_face_chip(img, shape, 150, 0.25)` cut from the same landmarks
//! (`tests/golden/dlib/`, made by `scripts/make-dlib-golden.py`) and ours must be within one
//! grey level mean absolute difference, and the recognition net's descriptors of the two
//! chips within 1e-3 L2. sample3 enlarged 2× and 4× (Triangle filter) covers the chips dlib
//! cuts from a pyramid level.

use facematch_testkit::golden::{self, GoldenInputs, assert_rows, test_pipeline};
use gpu_worker::Alignment;

#[test]
fn dlib_chips_and_their_descriptors_match_dlib() {
    let rows = golden::dlib_chips(
        &test_pipeline(Alignment::Dlib),
        &GoldenInputs::of_workspace(),
    )
    .expect("golden chips read and described");
    assert_rows(&rows);
}
