//! A re-upload re-queues an image whose message may be gone (issue #14, found 1): `queued` for
//! longer than the re-queue bound, or `failed` because the broker dead-lettered it. Within the
//! bound, or after a permanent failure, it is not queued again.

mod common;

use common::{System, png};
use facematch_core::{
    ImageHash,
    store::{ImageState, redis},
};

async fn set_fields(env: &System, hash: ImageHash, fields: &[(&str, String)]) {
    let mut conn = env.store.conn().await.expect("redis");
    let _: () = redis::cmd("HSET")
        .arg(env.store.keys().image(hash))
        .arg(fields)
        .query_async(&mut conn)
        .await
        .expect("hset");
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

async fn upload_hash(env: &System, name: &str, bytes: Vec<u8>) -> ImageHash {
    let (status, body) = env.upload(name, bytes).await;
    assert_eq!(status, 200, "{body}");
    body["hash"].as_str().expect("hash").parse().expect("hash")
}

#[tokio::test]
async fn a_job_queued_longer_than_the_bound_is_queued_again_on_reupload() {
    let env = System::new("requeue-stale").await;
    let hash = upload_hash(&env, "a.png", png(50)).await;
    // The message is lost (a worker took it and vanished, or the broker dropped it).
    assert_eq!(env.drain_queue().await.len(), 1);

    upload_hash(&env, "a-again.png", png(50)).await;
    assert_eq!(
        env.queue_len().await,
        0,
        "within the bound nothing is queued again"
    );

    let long_ago = now_ms() - 20 * 60 * 1000;
    set_fields(&env, hash, &[("queued_at", long_ago.to_string())]).await;
    upload_hash(&env, "a-later.png", png(50)).await;
    let messages = env.drain_queue().await;
    assert_eq!(
        messages.len(),
        1,
        "past the bound the job is published again"
    );
    assert_eq!(
        messages[0].0.message_id().as_ref().map(|m| m.to_string()),
        Some(hash.to_string())
    );
    let (_, doc) = env.get(&format!("/images/{hash}")).await;
    assert_eq!(doc["state"], "queued");
    assert_eq!(
        doc["names"],
        serde_json::json!(["a-again.png", "a-later.png", "a.png"])
    );
    // The re-queue renewed the lease: an immediate re-upload does not publish a third time.
    upload_hash(&env, "a.png", png(50)).await;
    assert_eq!(env.queue_len().await, 0);
    env.cleanup().await;
}

#[tokio::test]
async fn a_dead_lettered_image_is_queued_again_but_an_undecodable_one_is_not() {
    let env = System::new("requeue-failed").await;
    let dead = upload_hash(&env, "dead.png", png(60)).await;
    let broken = upload_hash(&env, "broken.png", png(61)).await;
    env.drain_queue().await;
    let dead_error = format!("{} delivery limit reached", ImageState::DEAD_LETTERED);
    set_fields(
        &env,
        dead,
        &[("state", "failed".into()), ("error", dead_error)],
    )
    .await;
    let undecodable = "undecodable: corrupt deflate stream".to_owned();
    set_fields(
        &env,
        broken,
        &[("state", "failed".into()), ("error", undecodable.clone())],
    )
    .await;

    upload_hash(&env, "dead.png", png(60)).await;
    upload_hash(&env, "broken.png", png(61)).await;
    let messages = env.drain_queue().await;
    let ids: Vec<String> = messages
        .iter()
        .filter_map(|(p, _)| p.message_id().as_ref().map(|m| m.to_string()))
        .collect();
    assert_eq!(
        ids,
        vec![dead.to_string()],
        "only the dead-lettered image is queued again"
    );

    let (_, doc) = env.get(&format!("/images/{dead}")).await;
    assert_eq!(doc["state"], "queued");
    assert!(doc.get("error").is_none(), "{doc}");
    let (_, doc) = env.get(&format!("/images/{broken}")).await;
    assert_eq!(doc["state"], "failed");
    assert_eq!(doc["error"], undecodable.as_str());
    env.cleanup().await;
}
