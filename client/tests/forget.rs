//! `facematch forget` against a real gateway: a file is hashed locally and its image erased; an
//! unknown image is a failed item (exit 1), and the others still go.

mod common;

use common::{cli, served};
use facematch_testkit::images::png;

#[tokio::test]
async fn forgetting_a_file_erases_its_image_and_an_unknown_one_fails_alone() {
    let system = served("forget").await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("one.png");
    std::fs::write(&file, png(11)).expect("write");
    let path = file.to_str().expect("utf-8");
    let scanned = cli(&system, &["scan", path, "--json"]).await;
    assert_eq!(scanned.code, Some(0), "{scanned:?}");
    let hash = scanned.json_lines()[0]["hash"]
        .as_str()
        .expect("hash")
        .to_owned();

    let unknown = "0".repeat(32);
    let forgot = cli(&system, &["forget", path, &unknown]).await;
    assert_eq!(forgot.code, Some(1), "one of two failed: {forgot:?}");
    assert!(
        forgot.stdout.starts_with(&format!("{hash}  forgotten")),
        "{forgot:?}"
    );
    assert!(
        forgot.stderr.contains(&unknown) && forgot.stderr.contains("404"),
        "{forgot:?}"
    );
    let status = cli(&system, &["status", &hash]).await;
    assert_eq!(status.code, Some(1), "gone: {status:?}");
    system.cleanup().await;
}
