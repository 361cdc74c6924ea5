//! A Redis stall during uploads leaves no `pending` record behind once the link is back
//! (issue #31): on the real `gateway` binary, its Redis link through a proxy the test owns,
//! with a short `FACEMATCH_PENDING_TIMEOUT`.

mod common;

use std::time::{Duration, Instant};

use common::{gateway_process::GatewayProcess, png};
use facematch_core::testing::{Namespace, Proxy, remove_namespace};

/// The states of the namespace's image records, read straight from Redis.
async fn image_states(ns: &Namespace) -> Vec<String> {
    use facematch_core::store::redis::{self, AsyncCommands};
    let mut conn = ns.store.conn().await.expect("redis");
    let pattern = format!("{}:*image:*", ns.id);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .expect("keys");
    let mut states = Vec::new();
    for key in keys {
        let state: Option<String> = conn.hget(&key, "state").await.expect("state");
        states.push(state.unwrap_or_default());
    }
    states
}

async fn upload(client: &reqwest::Client, base: &str, name: &str, seed: u32) -> u16 {
    client
        .post(format!("{base}/scan/image/{name}"))
        .body(png(seed))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_redis_stall_during_uploads_leaves_no_pending_record() {
    let ns = Namespace::new("sweep").await;
    let proxy = Proxy::start("127.0.0.1:6379".parse().expect("addr")).await;
    let redis_url = format!("redis://{}", proxy.addr);
    let gateway = GatewayProcess::start(
        &ns,
        &[
            ("FACEMATCH_REDIS_URL", &redis_url),
            ("FACEMATCH_PENDING_TIMEOUT", "3s"),
        ],
    )
    .await;
    let base = format!("http://{}", gateway.addr);
    let client = reqwest::Client::new();
    assert_eq!(upload(&client, &base, "before.png", 40).await, 200);

    // 25 uploads while Redis carries nothing for 8 s: their claims reach Redis only after the
    // gateway gave up on them.
    proxy.stall();
    let uploads: Vec<_> = (0..25)
        .map(|i| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(
                async move { upload(&client, &base, &format!("stall-{i}.png"), 41 + i).await },
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(8)).await;
    proxy.resume();
    let mut statuses = Vec::new();
    for u in uploads {
        statuses.push(u.await.expect("upload"));
    }
    eprintln!("uploads during the stall: {statuses:?}");
    assert!(statuses.contains(&503), "the stall must fail some uploads");
    let right_after = image_states(&ns).await;
    let stranded = right_after.iter().filter(|s| *s == "pending").count();
    eprintln!(
        "right after the stall: {} records, {stranded} pending",
        right_after.len()
    );
    // Otherwise the test below would pass whatever the sweep does.
    assert!(
        stranded > 0,
        "the stall must strand claims: {right_after:?}"
    );

    // The sweep settles every claim older than 3 s.
    let started = Instant::now();
    let mut states = image_states(&ns).await;
    while states.iter().any(|s| s == "pending") && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        states = image_states(&ns).await;
    }
    eprintln!("after {:?}: states {states:?}", started.elapsed());
    assert!(!states.iter().any(|s| s == "pending"), "{states:?}");
    // And the link works again.
    assert_eq!(upload(&client, &base, "after.png", 90).await, 200);
    drop(gateway);
    remove_namespace(&ns.store, &ns.topology, &ns.inspector).await;
}
