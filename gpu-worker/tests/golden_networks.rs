//! Each network on `golden/synthetic.json` (decoder-independent input at the exact net size):
//! the SSD's scores and decoded boxes, the landmark net's 136 outputs and the descriptor, each
//! within 1e-4 of face-api's.

use facematch_testkit::golden::{self, assert_rows, paths::golden_dir, test_pipeline};
use gpu_worker::Alignment;

#[test]
fn networks_match_synthetic_golden() {
    let g = golden::read_json(&golden_dir().join("synthetic.json")).expect("synthetic.json");
    let rows = golden::networks(&test_pipeline(Alignment::default()), &g).expect("networks run");
    assert_rows(&rows);
}
