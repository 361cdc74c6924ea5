//! `facematch keys` and `facematch collections` against a real gateway that requires keys:
//! a new key is printed alone on stdout, listed without the key, usable, and refused once
//! revoked.

mod common;

use common::{Run, cli, facematch, served_secured};
use facematch_testkit::images::png;

/// `facematch ARGS…` with `key` in `FACEMATCH_API_KEY`.
async fn cli_as(system: &facematch_testkit::System, key: &str, args: &[&str]) -> Run {
    let output = facematch()
        .env("FACEMATCH_GATEWAY", system.base_url())
        .env("FACEMATCH_API_KEY", key)
        .args(args)
        .output()
        .await
        .expect("run facematch");
    Run::from(output)
}

#[tokio::test]
async fn keys_are_made_listed_used_and_revoked_from_the_command_line() {
    let (system, admin) = served_secured("keys").await;
    let made = cli_as(&system, &admin, &["collections", "create", "team-x"]).await;
    assert_eq!(made.code, Some(0), "{made:?}");
    let listed = cli_as(&system, &admin, &["collections", "list"]).await;
    assert!(
        listed.stdout.lines().any(|l| l.starts_with("team-x ")),
        "{listed:?}"
    );

    let created = cli(
        &system,
        &[
            "--key",
            &admin,
            "keys",
            "create",
            "--collection",
            "team-x",
            "--scopes",
            "scan,read",
        ],
    )
    .await;
    assert_eq!(created.code, Some(0), "{created:?}");
    let lines: Vec<&str> = created.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "the key alone on stdout: {created:?}");
    let key = lines[0].to_owned();
    assert!(key.starts_with("fmk_") && key.len() == 68, "{key}");

    let list = cli_as(&system, &admin, &["keys", "list", "--json"]).await;
    assert_eq!(list.code, Some(0), "{list:?}");
    assert!(!list.stdout.contains(&key), "a list never shows a key");
    let keys: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).expect("json");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["collection"], "team-x");
    assert_eq!(keys[0]["scopes"], serde_json::json!(["scan", "read"]));
    let id = keys[0]["id"].as_str().expect("id").to_owned();
    let table = cli_as(&system, &admin, &["keys", "list"]).await;
    assert!(
        table.stdout.contains(&id) && table.stdout.contains("never"),
        "{table:?}"
    );

    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("one.png");
    std::fs::write(&file, png(9)).expect("write");
    let path = file.to_str().expect("utf-8");
    let scanned = cli_as(&system, &key, &["scan", path]).await;
    assert_eq!(scanned.code, Some(0), "{scanned:?}");

    let without = cli(&system, &["scan", path]).await;
    assert_eq!(without.code, Some(2), "{without:?}");
    assert!(without.stderr.contains("FACEMATCH_API_KEY"), "{without:?}");
    let not_admin = cli_as(&system, &key, &["keys", "list"]).await;
    assert_eq!(not_admin.code, Some(1), "{not_admin:?}");
    assert!(not_admin.stderr.contains("403"), "{not_admin:?}");

    let revoked = cli_as(&system, &admin, &["keys", "revoke", &id]).await;
    assert_eq!(revoked.code, Some(0), "{revoked:?}");
    let after = cli_as(&system, &key, &["scan", path]).await;
    assert_eq!(after.code, Some(2), "a revoked key is refused: {after:?}");
    let again = cli_as(&system, &admin, &["keys", "revoke", &id]).await;
    assert_eq!(again.code, Some(1), "{again:?}");

    let generated = cli(&system, &["keys", "generate"]).await;
    assert_eq!(generated.code, Some(0));
    assert!(generated.stdout.trim().starts_with("fmk_") && generated.stdout.trim().len() == 68);
    system.cleanup().await;
}
