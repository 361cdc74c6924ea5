//! One client must not shut others out (issue #31), on the real `gateway` binary with its
//! default limits: a flood of long-polls, a flood of connections and uploads that burst and
//! then go silent, each from its own loopback addresses (127.0.0.2 and up) while another
//! client (127.0.0.1) is served.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{gateway_process::GatewayProcess, png};
use facematch_core::{
    ImageHash,
    raw_http::{self, status_of},
    testing::{Namespace, remove_namespace},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const POLLS_PER_ADDRESS: usize = 100;
const POLL_ADDRESSES: u8 = 11;

/// A connection to `gateway` from `source`.
async fn connect_from(source: [u8; 4], gateway: &str) -> TcpStream {
    raw_http::connect_from(source, gateway)
        .await
        .expect("connect from a loopback source address")
}

/// One request from `source`, answered within `within`: its status.
async fn request_from(source: [u8; 4], gateway: &str, head: &str, within: Duration) -> u16 {
    let mut sock = connect_from(source, gateway).await;
    sock.write_all(head.as_bytes()).await.expect("send");
    status_of(&mut sock, within)
        .await
        .unwrap_or_else(|| panic!("no answer to {head:?} within {within:?}"))
}

async fn redis_commands_processed() -> u64 {
    use facematch_core::store::redis;
    let client = redis::Client::open(common::REDIS_URL).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut conn)
        .await
        .expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("total_commands_processed")
}

async fn upload(gateway: &str, source: [u8; 4], name: &str, bytes: &[u8]) -> (u16, String) {
    let mut sock = connect_from(source, gateway).await;
    let head = format!(
        "POST /scan/image/{name} HTTP/1.1\r\nHost: g\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    );
    sock.write_all(head.as_bytes()).await.expect("head");
    sock.write_all(bytes).await.expect("body");
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), sock.read_to_string(&mut answer)).await;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

fn hash_in(answer: &str) -> ImageHash {
    let body = answer.split("\r\n\r\n").nth(1).expect("body");
    let json: serde_json::Value = serde_json::from_str(body).expect("json");
    json["hash"].as_str().expect("hash").parse().expect("hash")
}

#[tokio::test]
async fn a_long_poll_flood_leaves_room_for_everyone_else_and_spares_redis() {
    let ns = Namespace::new("poll-flood").await;
    let gateway = GatewayProcess::start(&ns, &[]).await;
    let addr = gateway.addr.clone();
    // No worker: the image stays queued.
    let (status, answer) = upload(&addr, [127, 0, 0, 1], "queued.png", &png(30)).await;
    assert_eq!(status, 200, "{answer}");
    let hash = hash_in(&answer);

    let (refused, answered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut polls = Vec::new();
    for a in 0..POLL_ADDRESSES {
        for _ in 0..POLLS_PER_ADDRESS {
            let (addr, refused, answered) = (addr.clone(), refused.clone(), answered.clone());
            polls.push(tokio::spawn(async move {
                let mut sock = connect_from([127, 0, 0, 2 + a], &addr).await;
                let head = format!("GET /images/{hash}?wait=30 HTTP/1.1\r\nHost: g\r\n\r\n");
                sock.write_all(head.as_bytes()).await.expect("send");
                match status_of(&mut sock, Duration::from_secs(40)).await {
                    Some(429) => refused.fetch_add(1, Ordering::SeqCst),
                    Some(200) => answered.fetch_add(1, Ordering::SeqCst),
                    other => panic!("a long-poll was answered {other:?}"),
                };
                sock // kept open until the test ends
            }));
        }
    }
    let total = POLLS_PER_ADDRESS * POLL_ADDRESSES as usize;
    let settled = Instant::now() + Duration::from_secs(20);
    while refused.load(Ordering::SeqCst) < total - 256 && Instant::now() < settled {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let waiting = total - refused.load(Ordering::SeqCst) - answered.load(Ordering::SeqCst);
    eprintln!(
        "{total} long-polls: {waiting} waiting, {} answered 429",
        refused.load(Ordering::SeqCst)
    );
    assert_eq!(
        answered.load(Ordering::SeqCst),
        0,
        "the image is still queued"
    );
    assert!(
        (1..=256).contains(&waiting),
        "{waiting} long-polls wait (FACEMATCH_MAX_WAITERS is 256)"
    );

    // Another client is answered at once, on a connection of its own.
    for path in ["/healthz", "/readyz", &format!("/images/{hash}")] {
        let started = Instant::now();
        let status = request_from(
            [127, 0, 0, 1],
            &addr,
            &format!("GET {path} HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n"),
            Duration::from_secs(5),
        )
        .await;
        let took = started.elapsed();
        eprintln!("{path} from another client during the flood: {status} in {took:?}");
        assert_eq!(status, 200, "{path}");
        assert!(took < Duration::from_secs(1), "{path} took {took:?}");
    }

    // Redis is not read per waiter: a few reads per image waited on, not thousands a second.
    let before = redis_commands_processed().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let per_second = (redis_commands_processed().await - before) / 3;
    eprintln!("Redis during the flood: {per_second} commands/s for 1 image waited on");
    assert!(per_second < 200, "{per_second} Redis commands/s");

    // The image settles: every waiting poll is woken by the announcement, not its deadline.
    let settled_at = Instant::now();
    ns.store
        .fail_job(hash, "settled by the test")
        .await
        .expect("fail");
    while answered.load(Ordering::SeqCst) < waiting
        && settled_at.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "{} of {waiting} waiting polls answered {:?} after the image settled",
        answered.load(Ordering::SeqCst),
        settled_at.elapsed()
    );
    assert_eq!(answered.load(Ordering::SeqCst), waiting);
    assert!(settled_at.elapsed() < Duration::from_secs(4));
    for poll in polls {
        drop(poll.await.expect("poll task"));
    }
    drop(gateway);
    remove_namespace(&ns.store, &ns.topology, &ns.inspector).await;
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    let ns = Namespace::new("conn-flood").await;
    let gateway =
        GatewayProcess::start(&ns, &[("FACEMATCH_MAX_CONNECTIONS_PER_ADDRESS", "16")]).await;
    let addr = gateway.addr.clone();
    // 20 idle connections from one address: 16 are kept, the rest answered 429 at once.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(connect_from([127, 0, 1, 1], &addr).await);
    }
    let mut refused = 0;
    for sock in &mut idle {
        if status_of(sock, Duration::from_millis(300)).await == Some(429) {
            refused += 1;
        }
    }
    assert_eq!(refused, 4, "connections beyond 16 from one address");
    let status = request_from(
        [127, 0, 0, 1],
        &addr,
        "GET /healthz HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n",
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(status, 200, "another address is served");
    drop(idle);
    drop(gateway);
    remove_namespace(&ns.store, &ns.topology, &ns.inspector).await;
}

/// Sends the head of a 16 MiB upload and all of it but its last 1,000 bytes at full speed,
/// then nothing: returns the socket, still open.
async fn burst_then_silence(addr: String, source: [u8; 4], i: usize) -> TcpStream {
    const DECLARED: usize = 16 << 20;
    let mut sock = connect_from(source, &addr).await;
    let head = format!(
        "POST /scan/image/burst-{i}.png HTTP/1.1\r\nHost: g\r\nContent-Length: {DECLARED}\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.expect("head");
    let body = vec![0x89u8; DECLARED - 1000];
    // A refused upload is answered and closed, so writing fails or stops being read.
    let _ = tokio::time::timeout(Duration::from_secs(5), sock.write_all(&body)).await;
    sock
}

#[tokio::test]
async fn uploads_that_burst_and_go_silent_do_not_shut_others_out() {
    let ns = Namespace::new("burst").await;
    let gateway = GatewayProcess::start(&ns, &[]).await;
    let addr = gateway.addr.clone();
    let started = Instant::now();
    let attackers: Vec<_> = (0..4)
        .map(|i| tokio::spawn(burst_then_silence(addr.clone(), [127, 0, 2, 1], i)))
        .collect();
    let mut held = Vec::new();
    for a in attackers {
        held.push(a.await.expect("attacker"));
    }
    eprintln!(
        "4 burst-then-silent uploads sent in {:?}",
        started.elapsed()
    );

    let other = Instant::now();
    let (status, answer) = upload(&addr, [127, 0, 0, 1], "other.png", &png(31)).await;
    eprintln!("another client's upload: {status} in {:?}", other.elapsed());
    assert_eq!(status, 200, "{answer}");
    assert!(other.elapsed() < Duration::from_secs(15));

    // The silent uploads end with 408 (or were refused 429 at once for the address's share).
    let mut statuses = Vec::new();
    for sock in &mut held {
        statuses.push(status_of(sock, Duration::from_secs(20)).await);
    }
    eprintln!(
        "the silent uploads were answered {statuses:?} within {:?}",
        started.elapsed()
    );
    assert!(
        statuses.iter().all(|s| matches!(s, Some(408 | 429))),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&Some(408)),
        "a stall is ended: {statuses:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stalls end after FACEMATCH_BODY_STALL_TIMEOUT (10 s)"
    );
    // Their memory is back: the same address can upload again.
    let (status, answer) = upload(&addr, [127, 0, 2, 1], "after.png", &png(32)).await;
    assert_eq!(status, 200, "{answer}");
    drop(held);
    drop(gateway);
    remove_namespace(&ns.store, &ns.topology, &ns.inspector).await;
}
