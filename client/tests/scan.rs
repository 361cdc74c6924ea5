//! `facematch scan`, `match` and `status` against a real gateway and worker: output shapes,
//! matches across a folder, per-item failures and exit codes.

mod common;

use std::collections::BTreeMap;

use common::{cli, copy_as, demo_path, served};
use facematch_testkit::images::face_crop;
use image::ImageFormat;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanning_a_folder_with_wait_prints_hashes_states_and_matches() {
    facematch_testkit::init_tracing();
    let system = served("scan").await;
    let worker = system.start_worker(system.worker_args(4));
    let dir = tempfile::tempdir().expect("temp dir");
    for n in 1..=4 {
        copy_as(&demo_path(n), dir.path(), &format!("sample{n}.jpg"));
    }
    // The same bytes under a second name, and a face crop in a sub-folder.
    copy_as(&demo_path(1), dir.path(), "sample1-copy.jpg");
    let sub = dir.path().join("crops");
    std::fs::create_dir(&sub).expect("mkdir");
    std::fs::write(
        sub.join("face of sample1.PNG"),
        face_crop(1, 0, 1.0, ImageFormat::Png),
    )
    .expect("write crop");

    let folder = dir.path().to_str().expect("utf-8 temp path");
    let run = cli(&system, &["scan", folder, "--wait=240", "--json"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines = run.json_lines();
    assert_eq!(lines.len(), 6, "{run:?}");
    let by_name: BTreeMap<String, serde_json::Value> = lines
        .into_iter()
        .map(|l| (l["name"].as_str().expect("name").to_owned(), l))
        .collect();
    for (name, line) in &by_name {
        let hash = line["hash"].as_str().expect("hash");
        assert_eq!(hash.len(), 32, "{line}");
        assert_eq!(line["state"], "done", "{name}: {line}");
        assert!(line["faces"].as_u64().is_some_and(|f| f >= 1), "{line}");
        assert!(line["matches"].is_array(), "{line}");
        assert!(line.get("error").is_none(), "{line}");
    }
    let crop = &by_name["face of sample1.PNG"];
    let matches = |line: &serde_json::Value| -> Vec<String> {
        serde_json::from_value(line["matches"].clone()).expect("names")
    };
    assert!(
        crop["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("crops/face of sample1.PNG")),
        "{crop}"
    );
    let crop_matches = matches(crop);
    assert!(
        crop_matches.contains(&"sample1.jpg".to_owned())
            && crop_matches.contains(&"sample1-copy.jpg".to_owned()),
        "{crop}"
    );
    let original = &by_name["sample1.jpg"];
    assert_eq!(original["hash"], by_name["sample1-copy.jpg"]["hash"]);
    assert!(matches(original).contains(&"face of sample1.PNG".to_owned()));

    // The same folder again as text: known images answer at once, already done.
    let text = cli(&system, &["scan", folder, "--wait=60"]).await;
    assert_eq!(text.code, Some(0), "{text:?}");
    let line = text
        .stdout
        .lines()
        .find(|l| l.ends_with("/sample1.jpg") || l.contains("/sample1.jpg  "))
        .unwrap_or_else(|| panic!("no sample1.jpg line: {text:?}"));
    assert!(
        line.starts_with(original["hash"].as_str().expect("hash")),
        "{line}"
    );
    assert!(line.contains("  done  "), "{line}");
    assert!(
        line.contains("matches: ") && line.contains("face of sample1.PNG"),
        "{line}"
    );

    // `match` and `status` on the same image, as text and JSON.
    let hash = original["hash"].as_str().expect("hash");
    let text = cli(&system, &["match", hash]).await;
    assert_eq!(text.code, Some(0), "{text:?}");
    assert!(
        text.stdout.lines().any(|l| l == "face of sample1.PNG"),
        "{text:?}"
    );
    let json = cli(&system, &["match", hash, "--json"]).await;
    let names: Vec<String> = serde_json::from_str(&json.stdout).expect("json list");
    assert_eq!(names, matches(original));
    let details = cli(&system, &["match", hash, "--details", "--json"]).await;
    let details: serde_json::Value = serde_json::from_str(&details.stdout).expect("json");
    assert_eq!(details[0]["hash"], crop["hash"], "{details}");

    let status = cli(&system, &["status", hash]).await;
    assert_eq!(status.code, Some(0), "{status:?}");
    assert!(status.stdout.contains("state:   done"), "{status:?}");
    assert!(status.stdout.contains("sample1-copy.jpg"), "{status:?}");
    let raw = cli(&system, &["status", hash, "--json"]).await;
    let doc: serde_json::Value = serde_json::from_str(&raw.stdout).expect("json");
    assert_eq!(doc["hash"], hash);
    assert_eq!(doc["state"], "done");

    worker.stop().await;
    system.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_per_item_and_exit_codes_tell_them_apart() {
    facematch_testkit::init_tracing();
    let system = served("errors").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let good = copy_as(&demo_path(2), dir.path(), "good one.jpg");
    let notes = dir.path().join("notes.jpg");
    std::fs::write(&notes, b"not an image at all").expect("write");
    let missing = dir.path().join("missing.jpg");
    let args = [
        missing.to_str().expect("utf-8"),
        notes.to_str().expect("utf-8"),
        good.to_str().expect("utf-8"),
    ];

    let mut scan = vec!["scan"];
    scan.extend(args);
    let text = cli(&system, &scan).await;
    assert_eq!(text.code, Some(1), "{text:?}");
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{text:?}");
    assert!(lines[0].ends_with("good one.jpg"), "{text:?}");
    assert!(
        text.stderr.contains("missing.jpg") && text.stderr.contains("No such file"),
        "{text:?}"
    );
    assert!(
        text.stderr
            .contains("the gateway refused it (HTTP 415): unsupported_media_type: "),
        "{text:?}"
    );
    assert!(text.stderr.contains("2 of 3 items failed"), "{text:?}");

    scan.push("--json");
    let json = cli(&system, &scan).await;
    assert_eq!(json.code, Some(1), "{json:?}");
    let by_name: BTreeMap<String, serde_json::Value> = json
        .json_lines()
        .into_iter()
        .map(|l| (l["name"].as_str().expect("name").to_owned(), l))
        .collect();
    assert_eq!(by_name.len(), 3, "{json:?}");
    assert!(by_name["good one.jpg"]["hash"].is_string());
    assert!(by_name["missing.jpg"]["error"].is_string());
    assert!(by_name["missing.jpg"].get("hash").is_none());
    assert_eq!(by_name["notes.jpg"]["code"], "unsupported_media_type");

    // An unreachable gateway is a connection error: exit 2 and a clear message.
    let good = good.to_str().expect("utf-8");
    let down = cli(&system, &["--gateway", "http://127.0.0.1:1", "scan", good]).await;
    assert_eq!(down.code, Some(2), "{down:?}");
    assert!(
        down.stderr
            .contains("cannot reach the gateway at http://127.0.0.1:1"),
        "{down:?}"
    );
    let hash = "0".repeat(32);
    let down = cli(
        &system,
        &["match", &hash, "--gateway", "http://127.0.0.1:1"],
    )
    .await;
    assert_eq!(down.code, Some(2), "{down:?}");

    // Usage errors are 2 as well; an unknown hash is a failed item (1) for `status`.
    let usage = cli(&system, &["match", "not-a-hash"]).await;
    assert_eq!(usage.code, Some(2), "{usage:?}");
    let unknown = cli(&system, &["status", &hash]).await;
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(unknown.stderr.contains("not_found"), "{unknown:?}");
    let none = cli(&system, &["match", &hash]).await;
    assert_eq!((none.code, none.stdout.as_str()), (Some(0), ""), "{none:?}");

    system.cleanup().await;
}
