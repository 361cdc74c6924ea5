//! A stalled broker link (open, carrying nothing) through a proxy the test owns (issue #14,
//! found 4): `/readyz` fails within 10 s and recovers after the stall; an upload whose confirm
//! never came is answered 503 `may_be_queued` with its hash and state, its name is recorded,
//! and a retry after recovery queues it.

mod common;

use std::time::{Duration, Instant};

use common::{Options, System, error_code, png};
use facematch_core::testing::Proxy;

async fn wait_for_readyz(env: &System, status: u16, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if env.get("/readyz").await.0 == status {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

#[tokio::test]
async fn a_stalled_broker_fails_readiness_and_unconfirmed_uploads_say_may_be_queued() {
    let proxy = Proxy::start("127.0.0.1:5672".parse().expect("addr")).await;
    let env = System::with(
        "stall",
        Options {
            amqp_url: format!("amqp://guest:guest@{}/%2f", proxy.addr),
            ..Options::default()
        },
    )
    .await;
    assert_eq!(env.get("/readyz").await.0, 200);

    proxy.stall();
    // The upload is sent at once, before the stall can be noticed, so its confirm is what
    // goes missing; readiness is watched meanwhile.
    let (upload, failed_after) = tokio::join!(
        env.upload("stalled.png", png(70)),
        wait_for_readyz(&env, 503, Duration::from_secs(10)),
    );
    let failed_after = failed_after.expect("/readyz must fail within 10 s of a stall");
    eprintln!("/readyz failed {failed_after:?} after the stall");
    let (status, body) = upload;
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_code(&body), "may_be_queued", "{body}");
    let hash = body["hash"]
        .as_str()
        .expect("hash in a may_be_queued answer")
        .to_owned();
    assert_eq!(body["state"], "pending", "{body}");
    let (_, doc) = env.get(&format!("/images/{hash}")).await;
    assert_eq!(
        doc["names"],
        serde_json::json!(["stalled.png"]),
        "names kept for a late delivery"
    );

    // While the link is known to be stalled, nothing is sent: a plain 503, not "may be".
    let (status, body) = env.upload("refused.png", png(71)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_code(&body), "unavailable", "{body}");

    proxy.resume();
    let recovered = wait_for_readyz(&env, 200, Duration::from_secs(30)).await;
    assert!(recovered.is_some(), "/readyz must recover after the stall");
    // A retry of the unconfirmed image publishes it again (it is still `pending`).
    let (status, body) = env.upload("stalled-again.png", png(70)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hash"], hash.as_str());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut queued = Vec::new();
    while Instant::now() < deadline {
        queued.extend(
            env.drain_queue()
                .await
                .into_iter()
                .filter_map(|(p, _)| p.message_id().as_ref().map(|m| m.to_string())),
        );
        if queued.contains(&hash) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        queued.contains(&hash),
        "the retried image is queued: {queued:?}"
    );
    let (_, doc) = env.get(&format!("/images/{hash}")).await;
    assert_eq!(doc["state"], "queued");
    assert_eq!(
        doc["names"],
        serde_json::json!(["stalled-again.png", "stalled.png"])
    );
    env.cleanup().await;
}
