//! Collections on the real Redis and RabbitMQ: one key's collection never sees another's
//! images, names or URLs, in either direction, and the same bytes in two collections are two
//! records. (Faces never meeting across collections, with workers: gpu-worker/tests/collections.rs.)

mod common;

use std::collections::HashMap;

use common::{
    System, header,
    http_server::{Answer, HttpServer},
    png,
};
use poem::http::Method;

#[tokio::test]
async fn two_collections_share_nothing_in_either_direction() {
    let (env, admin) = System::secured("collections").await;
    env.create_collection(&admin, "team-a").await;
    env.create_collection(&admin, "team-b").await;
    let a = env
        .create_key(&admin, "team-a", &["scan", "read"])
        .await
        .key;
    let b = env
        .create_key(&admin, "team-b", &["scan", "read"])
        .await
        .key;

    // Same bytes, different names: one hash, two records.
    let up_a = env.upload_as(&a, "mine.png", png(1)).await;
    let up_b = env.upload_as(&b, "theirs.png", png(1)).await;
    assert_eq!((up_a.status, up_b.status), (200, 200));
    let hash = up_a.body["hash"].as_str().expect("hash").to_owned();
    assert_eq!(up_b.body["hash"], hash.as_str());
    let seen_a = env.get_as(&a, &format!("/images/{hash}")).await;
    let seen_b = env.get_as(&b, &format!("/images/{hash}")).await;
    assert_eq!(seen_a.body["names"], serde_json::json!(["mine.png"]));
    assert_eq!(seen_b.body["names"], serde_json::json!(["theirs.png"]));
    assert_eq!(env.queue_len().await, 2, "one job per collection");

    // Same filename, different bytes: each collection's name points at its own image.
    let again_a = env.upload_as(&a, "same.png", png(2)).await;
    let again_b = env.upload_as(&b, "same.png", png(3)).await;
    let (ha, hb) = (
        again_a.body["hash"].as_str().expect("hash").to_owned(),
        again_b.body["hash"].as_str().expect("hash").to_owned(),
    );
    assert_eq!(
        env.get_as(&a, &format!("/images/{ha}")).await.body["names"],
        serde_json::json!(["same.png"])
    );
    assert_eq!(
        env.get_as(&b, &format!("/images/{hb}")).await.body["names"],
        serde_json::json!(["same.png"])
    );

    // A guessed hash from the other collection answers exactly as an unknown one.
    let unknown = "f".repeat(32);
    for (key, theirs) in [(&a, &hb), (&b, &ha)] {
        let guessed = env.get_as(key, &format!("/images/{theirs}")).await;
        let never = env.get_as(key, &format!("/images/{unknown}")).await;
        assert_eq!((guessed.status, never.status), (404, 404));
        assert_eq!(
            guessed.body["error"]["code"], never.body["error"]["code"],
            "{} / {}",
            guessed.body, never.body
        );
        assert_eq!(
            env.get_as(key, &format!("/match/{theirs}")).await.body,
            serde_json::json!([])
        );
        assert_eq!(
            env.get_as(key, &format!("/match/{theirs}/details"))
                .await
                .body,
            serde_json::json!([])
        );
    }

    // A URL scanned in one collection is unknown in the other: fetched again there.
    let server = HttpServer::start(HashMap::from([(
        "/face.png".to_owned(),
        Answer::ok(png(4), "image/png"),
    )]))
    .await;
    let url = format!("http://{}/face.png", server.addr);
    let body = serde_json::json!({ "url": url }).to_string().into_bytes();
    let first = env
        .send_as(Some(&a), Method::POST, "/scan/url", body.clone())
        .await;
    let second = env
        .send_as(Some(&a), Method::POST, "/scan/url", body.clone())
        .await;
    let other = env.send_as(Some(&b), Method::POST, "/scan/url", body).await;
    assert_eq!(
        (first.status, second.status, other.status),
        (200, 200, 200),
        "{}",
        other.body
    );
    assert_eq!(
        server.hits("/face.png"),
        2,
        "once per collection, never twice in one"
    );
    let url_hash = first.body["hash"].as_str().expect("hash");
    assert_eq!(
        env.get_as(&b, &format!("/images/{url_hash}")).await.body["names"],
        serde_json::json!([url])
    );

    // The URL's image, as each collection knows it (what `facematch forget URL` looks up).
    let query = format!("/urls?url={}", url.replace(':', "%3A").replace('/', "%2F"));
    let bound = env.get_as(&a, &query).await;
    assert_eq!(
        (bound.status, bound.body["hash"].as_str()),
        (200, Some(url_hash)),
        "{}",
        bound.body
    );
    let unknown_url = env
        .get_as(&a, "/urls?url=http%3A%2F%2F127.0.0.1%3A9%2Fnever.png")
        .await;
    assert_eq!(unknown_url.status, 404, "{}", unknown_url.body);

    // Every job carries its collection and that collection's epoch.
    let messages = env.drain_queue().await;
    let mut by_collection: HashMap<String, usize> = HashMap::new();
    for (props, _) in &messages {
        let collection = header(props, "collection").expect("collection header");
        assert!(header(props, "epoch").is_some_and(|e| !e.is_empty()));
        *by_collection.entry(collection).or_default() += 1;
    }
    assert_eq!(
        by_collection,
        HashMap::from([("team-a".into(), 3), ("team-b".into(), 3)])
    );
    env.cleanup().await;
}

#[tokio::test]
async fn deleting_a_collection_revokes_its_keys_and_erases_its_records() {
    let (env, admin) = System::secured("collections-delete").await;
    env.create_collection(&admin, "gone").await;
    let key = env.create_key(&admin, "gone", &["scan", "read"]).await.key;
    let up = env.upload_as(&key, "x.png", png(5)).await;
    assert_eq!(up.status, 200);

    let deleted = env
        .send_as(Some(&admin), Method::DELETE, "/collections/gone", vec![])
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.body["images"], 1);
    assert_eq!(deleted.body["api_keys"], 1);
    let after = env.upload_as(&key, "y.png", png(6)).await;
    assert_eq!(after.status, 401, "its keys go with it");
    let again = env
        .send_as(Some(&admin), Method::DELETE, "/collections/gone", vec![])
        .await;
    assert_eq!(again.status, 404);
    let default = env
        .send_as(Some(&admin), Method::DELETE, "/collections/default", vec![])
        .await;
    assert_eq!(default.status, 400);

    let mut conn = env.store.conn().await.expect("redis");
    let left: Vec<String> = facematch_core::store::redis::cmd("KEYS")
        .arg(format!("{}{{gone}}*", env.store.keys().prefix()))
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert!(
        left.is_empty(),
        "nothing of the collection is left: {left:?}"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn bad_admin_input_gets_a_clear_error_and_changes_nothing() {
    let (env, admin) = System::secured("collections-bad").await;
    let cases = [
        (
            Method::POST,
            "/collections",
            serde_json::json!({ "name": "Bad Name" }),
            400,
        ),
        (
            Method::POST,
            "/collections",
            serde_json::json!({ "name": "" }),
            400,
        ),
        (
            Method::POST,
            "/collections",
            serde_json::json!({ "name": "default" }),
            409,
        ),
        (
            Method::POST,
            "/keys",
            serde_json::json!({ "collection": "nope", "scopes": ["read"] }),
            404,
        ),
        (
            Method::POST,
            "/keys",
            serde_json::json!({ "collection": "default", "scopes": [] }),
            400,
        ),
        (
            Method::POST,
            "/keys",
            serde_json::json!({ "collection": "default", "scopes": ["write"] }),
            400,
        ),
        (Method::POST, "/keys", serde_json::json!(["default"]), 400),
    ];
    for (method, path, body, status) in cases {
        let answer = env
            .send_as(
                Some(&admin),
                method.clone(),
                path,
                body.to_string().into_bytes(),
            )
            .await;
        assert_eq!(
            answer.status, status,
            "{method} {path} {body}: {}",
            answer.body
        );
    }
    let keys = env.get_as(&admin, "/keys").await;
    assert_eq!(keys.body, serde_json::json!([]), "no key was made");
    let collections = env.get_as(&admin, "/collections").await;
    let names: Vec<&str> = collections
        .body
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["default"]);
    let revoke = env
        .send_as(Some(&admin), Method::DELETE, "/keys/key_nope", vec![])
        .await;
    assert_eq!(revoke.status, 404);
    env.cleanup().await;
}
