//! RabbitMQ outage: a proxy the test owns is cut and restored in front of the broker.

mod common;

use std::time::{Duration, Instant};

use common::{Options, System, png};
use facematch_core::testing::Proxy;

#[tokio::test]
async fn cut_broker_gives_503_then_recovers_and_every_200_is_queued() {
    let proxy = Proxy::start("127.0.0.1:5672".parse().expect("addr")).await;
    let env = System::with(
        "broker",
        Options {
            amqp_url: format!("amqp://guest:guest@{}/%2f", proxy.addr),
            ..Options::default()
        },
    )
    .await;
    let mut accepted = Vec::new();
    let mut seed = 100;
    let mut next = || {
        seed += 1;
        png(seed)
    };

    let (status, body) = env.upload("before.png", next()).await;
    assert_eq!(status, 200, "{body}");
    accepted.push(body["hash"].as_str().expect("hash").to_owned());

    proxy.cut();
    for i in 0..5 {
        let started = Instant::now();
        let resp = env
            .client
            .post(format!("/scan/image/during-{i}.png"))
            .body(next())
            .send()
            .await;
        let elapsed = started.elapsed();
        let status = resp.0.status().as_u16();
        assert_eq!(status, 503, "during the cut");
        assert!(resp.0.headers().contains_key("retry-after"));
        assert!(elapsed < Duration::from_secs(7), "answered in {elapsed:?}");
        assert_eq!(env.get("/readyz").await.0, 503);
    }

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut recovered = false;
    while Instant::now() < deadline {
        let (status, body) = env.upload("after.png", next()).await;
        if status == 200 {
            accepted.push(body["hash"].as_str().expect("hash").to_owned());
            recovered = true;
            break;
        }
        assert_eq!(status, 503, "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the gateway did not recover without a restart");
    assert!(env.publisher.connect_count() >= 2, "it reconnected");
    for i in 0..3 {
        let (status, body) = env.upload(&format!("later-{i}.png"), next()).await;
        assert_eq!(status, 200, "{body}");
        accepted.push(body["hash"].as_str().expect("hash").to_owned());
    }

    let queued: Vec<String> = env
        .drain_queue()
        .await
        .into_iter()
        .filter_map(|(p, _)| p.message_id().as_ref().map(|m| m.to_string()))
        .collect();
    for hash in &accepted {
        assert!(
            queued.contains(hash),
            "200 for {hash} but no message in the queue"
        );
    }
    assert_eq!(
        queued.len(),
        accepted.len(),
        "no message for a refused request"
    );
    env.cleanup().await;
}
