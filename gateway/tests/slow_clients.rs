//! Slow and greedy clients (issue #14, found 3): headers that trickle in are cut at the header
//! timeout, a stalled body gets 408, the in-flight slot and the memory budget are taken before
//! the body is read (429 without reading it), and metric labels stay a fixed set.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Options, System, error_code, png};
use facematch_core::testing::parse_prometheus;
use gateway::{limits::Limits, server::ServerConfig};
use poem::Body;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A body that sends `head` and then nothing, forever.
fn stalling_body(head: &'static [u8]) -> Body {
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(head))]),
        futures_util::stream::pending(),
    );
    Body::from_bytes_stream(stream)
}

/// Sends a request head one byte a second; returns how long the server kept the connection.
async fn trickle_headers(addr: std::net::SocketAddr, give_up: Duration) -> Option<Duration> {
    let mut sock = TcpStream::connect(addr).await.ok()?;
    let started = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut buf = [0u8; 256];
    for byte in head.iter().cycle() {
        if started.elapsed() > give_up {
            return None;
        }
        if sock.write_all(&[*byte]).await.is_err() {
            return Some(started.elapsed());
        }
        match tokio::time::timeout(Duration::from_secs(1), sock.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => return Some(started.elapsed()), // an error answer, then the close
            Err(_) => {}
        }
    }
    None
}

#[tokio::test]
async fn connections_trickling_headers_are_closed_after_the_header_timeout() {
    let mut env = System::new("slow-headers").await;
    let timeout = Duration::from_secs(2);
    let addr = env
        .listen(ServerConfig {
            header_timeout: timeout,
            max_connections: 1024,
            max_connections_per_address: 0,
            grace: Duration::from_secs(1),
        })
        .await;
    let clients: Vec<_> = (0..200)
        .map(|_| tokio::spawn(trickle_headers(addr, Duration::from_secs(20))))
        .collect();
    // A well-behaved client is still served meanwhile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut sock = TcpStream::connect(addr).await.expect("connect");
    sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    sock.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let mut kept = Vec::new();
    for client in clients {
        let held = client.await.expect("client task");
        kept.push(held.expect("the server must close a connection trickling its headers"));
    }
    let longest = kept.iter().max().copied().unwrap_or_default();
    eprintln!("200 slow-header connections closed after at most {longest:?}");
    assert!(
        longest < timeout + Duration::from_secs(4),
        "closed after {longest:?} with a {timeout:?} header timeout"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn a_stalled_body_is_answered_408() {
    let env = System::with(
        "slow-body",
        Options {
            limits: Limits {
                min_body_rate: 1024,
                ..Limits::default()
            },
            ..Options::default()
        },
    )
    .await;
    let resp = env
        .client
        .post("/scan/image/slow.png")
        .body(stalling_body(b"\x89PNG\r\n\x1a\n"))
        .send()
        .await;
    assert_eq!(resp.0.status().as_u16(), 408);
    let text = resp.0.into_body().into_string().await.expect("body");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(error_code(&json), "body_timeout", "{json}");
    assert!(env.redis_keys().await.is_empty());
    env.cleanup().await;
}

#[tokio::test]
async fn the_slot_and_the_memory_are_taken_before_the_body_is_read() {
    let env = System::with(
        "slot-first",
        Options {
            max_in_flight: 1,
            limits: Limits {
                max_buffered: 4096,
                ..Limits::default()
            },
            ..Options::default()
        },
    )
    .await;
    // A body declared larger than the whole memory budget: refused before it is read.
    let resp = env
        .client
        .post("/scan/image/big.png")
        .header("content-length", "100000")
        .body(stalling_body(b"\x89PNG"))
        .send()
        .await;
    assert_eq!(resp.0.status().as_u16(), 429);
    let text = resp.0.into_body().into_string().await.expect("body");
    assert!(text.contains("memory"), "{text}");

    // One slow upload holds the only slot; the next request is refused without a read.
    let client = poem::test::TestClient::new(gateway::app(env.state.clone()));
    let slow = tokio::spawn(async move {
        client
            .post("/scan/image/slow.png")
            .body(stalling_body(b"\x89PNG"))
            .send()
            .await
            .0
            .status()
            .as_u16()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = env
        .client
        .post("/scan/image/next.png")
        .body(stalling_body(b"\x89PNG"))
        .send()
        .await;
    assert_eq!(
        resp.0.status().as_u16(),
        429,
        "refused before its body is read"
    );
    assert!(resp.0.headers().contains_key("retry-after"));
    slow.abort();
    let _ = slow.await;
    // With the slot free again, a real upload goes through.
    let (status, body) = env.upload("ok.png", png(80)).await;
    assert_eq!(status, 200, "{body}");
    env.cleanup().await;
}

#[tokio::test]
async fn random_methods_share_one_metric_label_and_405_says_allow() {
    let env = System::new("labels").await;
    for i in 0..30 {
        let method = poem::http::Method::from_bytes(format!("FROB{i}").as_bytes()).expect("method");
        let resp = env.client.request(method, "/healthz").send().await;
        assert_eq!(resp.0.status().as_u16(), 405);
        assert_eq!(
            resp.0.headers().get("allow").map(|v| v.to_str().ok()),
            Some(Some("GET, HEAD"))
        );
    }
    let resp = env.client.get("/scan/url").send().await;
    assert_eq!(resp.0.status().as_u16(), 405);
    assert_eq!(
        resp.0.headers().get("allow").map(|v| v.to_str().ok()),
        Some(Some("POST"))
    );
    let resp = env
        .client
        .delete(format!("/match/{}", "0".repeat(32)))
        .send()
        .await;
    assert_eq!(resp.0.status().as_u16(), 405);
    assert_eq!(
        resp.0.headers().get("allow").map(|v| v.to_str().ok()),
        Some(Some("GET, HEAD"))
    );

    for i in 0..5 {
        let resp = env.client.get(format!("/no-such-route-{i}")).send().await;
        assert_eq!(resp.0.status().as_u16(), 404);
    }
    let hash = "0".repeat(32);
    assert_eq!(env.get(&format!("/match/{hash}")).await.0, 200);

    let resp = env.client.get("/metrics").send().await;
    let text = resp.0.into_body().into_string().await.expect("body");
    let series = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !text.contains("FROB"),
        "a client-chosen method became a label"
    );
    assert!(
        !text.contains("no-such-route") && !text.contains(&hash),
        "a client-chosen path became a label"
    );
    assert!(
        series.contains_key(
            r#"facematch_gateway_requests_total{route="other",method="GET",status="404"}"#
        ) && series.contains_key(
            r#"facematch_gateway_requests_total{route="/match/{hash}",method="GET",status="200"}"#
        ),
        "unknown paths are `other`, routes are templates: {text}"
    );
    assert!(
        series
            .keys()
            .any(|k| k.contains(r#"method="other""#) && k.contains(r#"status="405""#)),
        "{text}"
    );
    env.cleanup().await;
}
