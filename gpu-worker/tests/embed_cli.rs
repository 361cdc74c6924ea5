//! `gpu-worker embed`: one JSON line per file, in order; a bad file gets an error line and the
//! others still run.

use std::process::Command;

use facematch_testkit::paths::{demo_path, weights_dir};

#[test]
fn embed_prints_a_line_per_file_and_survives_bad_ones() {
    let bad = std::env::temp_dir().join(format!("facematch-embed-bad-{}.jpg", std::process::id()));
    std::fs::write(&bad, b"this is not a jpeg").expect("write bad file");
    let out = Command::new(env!("CARGO_BIN_EXE_gpu-worker"))
        .args(["embed", "--device", "cpu", "--batch", "2", "--weights-dir"])
        .arg(weights_dir())
        .arg(demo_path(1))
        .arg(&bad)
        .arg(demo_path(3))
        .output()
        .expect("run gpu-worker");
    let _ = std::fs::remove_file(&bad);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3);
    let faces = |v: &serde_json::Value| v["faces"].as_array().map(Vec::len);
    assert_eq!(faces(&lines[0]), Some(3), "sample1 has 3 faces");
    assert!(
        lines[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not an image")),
        "{}",
        lines[1]
    );
    assert_eq!(faces(&lines[2]), Some(3));
    let face = &lines[2]["faces"][0];
    assert_eq!(face["descriptor"].as_array().map(Vec::len), Some(128));
    assert_eq!(face["landmarks"].as_array().map(Vec::len), Some(68));
    assert!(face["box"]["width"].as_f64().is_some_and(|w| w > 10.0));
}
