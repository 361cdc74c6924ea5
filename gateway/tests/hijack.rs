//! Filenames and URLs are separate namespaces: a filename spelled like a URL can neither stand
//! in for that URL nor take it over (issue #14, found 2), in both orders.

mod common;

use std::collections::HashMap;

use common::{
    System,
    http_server::{Answer, HttpServer},
    png,
};
use facematch_core::{ImageHash, store::redis};

/// A URL as one path segment, the way a client names a file after it.
fn as_filename(url: &str) -> String {
    url.replace('/', "%2F")
}

#[tokio::test]
async fn a_filename_spelled_like_a_url_does_not_answer_for_it() {
    let env = System::new("hijack-file-first").await;
    let served = png(31);
    let server = HttpServer::start(HashMap::from([(
        "/x.png".to_owned(),
        Answer::ok(served.clone(), "image/png"),
    )]))
    .await;
    let url = server.url("/x.png");

    let (status, upload) = env.upload(&as_filename(&url), png(30)).await;
    assert_eq!(status, 200, "{upload}");
    let (status, scanned) = env.scan_url(&url).await;
    assert_eq!(status, 200, "{scanned}");

    assert_eq!(server.hits("/x.png"), 1, "the URL must be fetched");
    assert_eq!(scanned["hash"], ImageHash::of(&served).to_string());
    assert_ne!(scanned["hash"], upload["hash"]);
    // The filename still labels the upload; the URL labels what it served.
    let (_, doc) = env
        .get(&format!(
            "/images/{}",
            upload["hash"].as_str().expect("hash")
        ))
        .await;
    assert_eq!(doc["names"], serde_json::json!([url]));
    let (_, doc) = env
        .get(&format!(
            "/images/{}",
            scanned["hash"].as_str().expect("hash")
        ))
        .await;
    assert_eq!(doc["names"], serde_json::json!([url]));
    assert_eq!(env.queue_len().await, 2);
    env.cleanup().await;
}

#[tokio::test]
async fn a_filename_upload_cannot_rebind_or_remove_a_scanned_url() {
    let env = System::new("hijack-url-first").await;
    let served = png(41);
    let server = HttpServer::start(HashMap::from([(
        "/y.png".to_owned(),
        Answer::ok(served.clone(), "image/png"),
    )]))
    .await;
    let url = server.url("/y.png");
    let (status, scanned) = env.scan_url(&url).await;
    assert_eq!(status, 200, "{scanned}");
    let url_hash: ImageHash = scanned["hash"]
        .as_str()
        .expect("hash")
        .parse()
        .expect("hash");

    // The same spelling as a filename: first on the URL's own bytes, then on others twice
    // (the filename moves between images, which used to take the URL's name with it).
    let name = as_filename(&url);
    let (status, _) = env.upload(&name, served.clone()).await;
    assert_eq!(status, 200);
    let (status, other) = env.upload(&name, png(42)).await;
    assert_eq!(status, 200, "{other}");
    let (status, third) = env.upload(&name, png(43)).await;
    assert_eq!(status, 200, "{third}");

    assert_eq!(
        env.store.hash_of_url(&url).await.expect("redis"),
        Some(url_hash)
    );
    let (status, again) = env.scan_url(&url).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["hash"],
        url_hash.to_string(),
        "the URL still answers its own image"
    );
    assert_eq!(server.hits("/y.png"), 1, "and is not fetched again");
    let (_, doc) = env.get(&format!("/images/{url_hash}")).await;
    assert_eq!(
        doc["names"],
        serde_json::json!([url]),
        "the URL is still a name of its image"
    );
    let (_, doc) = env
        .get(&format!("/images/{}", other["hash"].as_str().expect("h")))
        .await;
    assert_eq!(doc["names"], serde_json::json!([]), "the filename moved on");
    let (_, doc) = env
        .get(&format!("/images/{}", third["hash"].as_str().expect("h")))
        .await;
    assert_eq!(
        doc["names"],
        serde_json::json!([url]),
        "as a filename, on the latest upload"
    );

    // `/match` still lists plain strings, whichever namespace they come from.
    let third_hash: ImageHash = third["hash"].as_str().expect("h").parse().expect("hash");
    let mut conn = env.store.conn().await.expect("redis");
    let keys = env.store.keys();
    let _: () = redis::pipe()
        .zadd(keys.matches(third_hash), url_hash.to_string(), 0.2)
        .zadd(keys.matches(url_hash), third_hash.to_string(), 0.2)
        .query_async(&mut conn)
        .await
        .expect("zadd");
    let (_, names) = env.get(&format!("/match/{third_hash}")).await;
    assert_eq!(names, serde_json::json!([url]));
    let (_, names) = env.get(&format!("/match/{url_hash}")).await;
    assert_eq!(names, serde_json::json!([url]));
    env.cleanup().await;
}
