//! Redis cut through a proxy the test owns: the worker's work in progress waits for Redis and
//! ends `done` with each face logged once; a connection dropped in the middle of a command
//! counts as an outage to wait out, not as a refusal; and the store's one shared connection
//! is replaced after an outage.

// The nested futures of these tests overflow rustc's default query depth in a clean build.
#![recursion_limit = "256"]

use std::time::{Duration, Instant};

use facematch_core::{
    store::{Store, StoreError, redis},
    testing::Proxy,
};
use facematch_testkit::{System, images::eight_images, within, worker_metrics};

const WAIT: Duration = Duration::from_secs(120);

async fn proxy_to_redis() -> Proxy {
    Proxy::start("127.0.0.1:6379".parse().expect("addr")).await
}

/// A store that reaches Redis through `proxy`.
fn store_via(proxy: &Proxy, key_prefix: &str) -> Store {
    Store::open(&format!("redis://{}", proxy.addr), key_prefix).expect("url")
}

/// Polls `ready` every 20 ms until it holds; panics naming `what` after [`WAIT`].
async fn wait_until<F, Fut>(what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !ready().await {
        assert!(Instant::now() < deadline, "{what} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_retried_and_nothing_fails() {
    within(async {
        let sys = System::new("redis-cut").await;
        let proxy = proxy_to_redis().await;
        let (mut args, metrics_base) = sys.worker_args_with_metrics(2);
        args.service.redis.redis_url = format!("redis://{}", proxy.addr);
        let worker = sys.start_worker(args);
        let mut hashes = Vec::new();
        for (name, bytes) in eight_images().into_iter().take(4) {
            hashes.push(sys.scan(&name, bytes).await);
        }
        // Cut once the first batch is being worked on, whatever the machine's speed, long
        // enough for several retries.
        wait_until("the worker starts a job", || async {
            sys.attempts(hashes[0]).await > 0
        })
        .await;
        proxy.cut();
        tokio::time::sleep(Duration::from_secs(3)).await;
        proxy.restore();
        sys.assert_done_and_logged_once(&hashes, WAIT).await;
        let retries = worker_metrics(&metrics_base)
            .await
            .get("facematch_worker_redis_retries_total")
            .copied()
            .unwrap_or(0.0);
        assert!(retries > 0.0, "the outage reached the worker's Redis steps");
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}

/// The worker waits out a Redis error only when it is transient (at start-up it reads the
/// store's descriptor crop this way): a connection dropped while a command is in flight must
/// be one, not a reason to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_command_is_transient() {
    within(async {
        let proxy = proxy_to_redis().await;
        let store = store_via(&proxy, "t-redis-drop:");
        // Made before the stall, so the stall holds the command, not the connection's set-up.
        let mut conn = store.conn().await.expect("the connection works");
        proxy.stall();
        let held_before = proxy.held_chunks();
        let in_flight = tokio::spawn(async move {
            redis::cmd("GET")
                .arg("t-redis-drop:alignment")
                .query_async::<Option<String>>(&mut conn)
                .await
        });
        wait_until("the command reaches the stalled link", || async {
            proxy.held_chunks() > held_before
        })
        .await;
        // Cut while still stalled: resuming first could let the held command through.
        proxy.cut();
        let error = StoreError::from(
            in_flight
                .await
                .expect("task")
                .expect_err("the connection was dropped under the command"),
        );
        assert!(
            matches!(error, StoreError::Command(_)),
            "a dropped command: {error:?}"
        );
        assert!(error.is_transient(), "not transient: {error}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_shares_one_connection_and_replaces_it_after_an_outage() {
    within(async {
        let proxy = proxy_to_redis().await;
        let store = store_via(&proxy, "t-redis-link:");
        let pings = (0..50).map(|_| store.ping());
        for result in futures_util::future::join_all(pings).await {
            result.expect("ping");
        }
        assert_eq!(
            proxy.connections(),
            1,
            "50 concurrent commands, one connection"
        );
        proxy.cut();
        assert!(store.ping().await.is_err(), "Redis is cut off");
        proxy.restore();
        store
            .ping()
            .await
            .expect("a new connection once Redis is back");
        assert_eq!(proxy.connections(), 2);
    })
    .await;
}
