//! A store made before collections becomes the `default` collection when the new version
//! starts, without losing anything: its images, names, URLs, faces, matches and face log.

mod common;

use std::time::Duration;

use common::System;
use facematch_core::{
    store::{SchemaOutcome, redis},
    testing::Namespace,
};

#[tokio::test]
async fn an_old_store_is_moved_into_default_once() {
    let ns = Namespace::new("migration").await;
    let prefix = ns.store.keys().prefix().to_owned();
    let (a, b) = ("0".repeat(31) + "a", "0".repeat(31) + "b");
    let mut conn = ns.store.conn().await.expect("redis");
    // The old layout, as the previous version wrote it.
    let _: () = redis::pipe()
        .hset_multiple(
            format!("{prefix}image:{a}"),
            &[
                ("state", "done"),
                ("faces", "1"),
                ("created_at", "1"),
                ("updated_at", "1"),
            ],
        )
        .hset_multiple(
            format!("{prefix}image:{b}"),
            &[
                ("state", "done"),
                ("faces", "1"),
                ("created_at", "1"),
                ("updated_at", "1"),
            ],
        )
        .set(format!("{prefix}faces:{a}"), "[]")
        .sadd(format!("{prefix}files:{a}"), "alice.jpg")
        .set(format!("{prefix}file:alice.jpg"), &a)
        .sadd(format!("{prefix}urls:{b}"), "https://example.com/b.jpg")
        .set(format!("{prefix}url:https://example.com/b.jpg"), &b)
        .zadd(format!("{prefix}matches:{a}"), &b, 0.3)
        .zadd(format!("{prefix}matches:{b}"), &a, 0.3)
        .set(format!("{prefix}alignment"), "dlib")
        .query_async(&mut conn)
        .await
        .expect("old keys");
    let _: String = redis::cmd("XADD")
        .arg(format!("{prefix}facelog"))
        .arg("*")
        .arg("h")
        .arg(&a)
        .arg("d")
        .arg(vec![0u8; 512])
        .query_async(&mut conn)
        .await
        .expect("xadd");

    let outcome = ns
        .store
        .ensure_schema(Duration::from_secs(10))
        .await
        .expect("schema");
    assert_eq!(outcome, SchemaOutcome::Migrated { moved: 10 });
    assert_eq!(
        ns.store
            .ensure_schema(Duration::from_secs(10))
            .await
            .expect("schema"),
        SchemaOutcome::Current,
        "once"
    );
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    for key in &left {
        let rest = &key[prefix.len()..];
        assert!(
            rest.starts_with("{default}:")
                || rest.starts_with("{_}:")
                || ["alignment", "schema"].contains(&rest),
            "{key} was not moved"
        );
    }

    // The gateway of the new version answers from it as before.
    let env = System::attach(ns).await;
    assert_eq!(
        env.get_json(&format!("/match/{a}")).await,
        serde_json::json!(["https://example.com/b.jpg"])
    );
    assert_eq!(
        env.get_json(&format!("/match/{b}")).await,
        serde_json::json!(["alice.jpg"])
    );
    assert_eq!(
        env.get_json(&format!("/images/{a}")).await["names"],
        serde_json::json!(["alice.jpg"])
    );
    assert_eq!(env.facelog_owners().await.len(), 1);
    env.cleanup().await;
}
