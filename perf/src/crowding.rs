//! The chaos run's crowding scenarios (issue #31), against a gateway on loopback: one client
//! floods it with long-polls or with uploads that burst and go silent, from loopback addresses
//! of its own (127.0.x.y), while another client (127.0.0.1) must still be served. Each returns
//! what it saw and the findings (an empty list when the gateway held).

use std::time::{Duration, Instant};

use facematch_core::raw_http::{connect_from, status_of};
use tokio::io::AsyncWriteExt;

/// How long `GET path` from 127.0.0.1 took to answer 200, if it did within 5 s.
async fn timed_get(gateway: &str, path: &str) -> Option<Duration> {
    let started = Instant::now();
    let mut sock = connect_from([127, 0, 0, 1], gateway).await.ok()?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n");
    sock.write_all(head.as_bytes()).await.ok()?;
    (status_of(&mut sock, Duration::from_secs(5)).await == Some(200)).then(|| started.elapsed())
}

/// 1,100 long-polls (`wait=20`) on `hash` from 11 addresses: `/healthz` from another client
/// must answer within 1 s while they are open.
pub async fn long_poll_flood(gateway: &str, hash: &str) -> (String, Vec<String>) {
    let mut polls = Vec::new();
    for a in 0..11u8 {
        for _ in 0..100 {
            let (gateway, hash) = (gateway.to_owned(), hash.to_owned());
            polls.push(tokio::spawn(async move {
                let mut sock = connect_from([127, 0, 3, 1 + a], &gateway).await.ok()?;
                let head = format!("GET /images/{hash}?wait=20 HTTP/1.1\r\nHost: g\r\n\r\n");
                sock.write_all(head.as_bytes()).await.ok()?;
                let status = status_of(&mut sock, Duration::from_secs(2)).await;
                Some((status, sock))
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let healthz = timed_get(gateway, "/healthz").await;
    let readyz = timed_get(gateway, "/readyz").await;
    let (mut refused, mut waiting, mut open) = (0, 0, Vec::new());
    for poll in polls {
        match poll.await.ok().flatten() {
            Some((Some(429), _)) => refused += 1,
            Some((None, sock)) => {
                waiting += 1;
                open.push(sock);
            }
            _ => {}
        }
    }
    let seen = format!(
        "long-poll flood: 1100 polls, {waiting} waiting, {refused} answered 429; /healthz {healthz:?}, /readyz {readyz:?} from another client"
    );
    let mut findings = Vec::new();
    for (route, took) in [("/healthz", healthz), ("/readyz", readyz)] {
        if took.is_none_or(|t| t >= Duration::from_secs(1)) {
            findings.push(format!("long-poll flood: {route} took {took:?}"));
        }
    }
    drop(open);
    (seen, findings)
}

/// Four uploads from one address that send all of a declared 16 MiB but 1,000 bytes at full
/// speed and then nothing; `normal` is an upload from another client, which must be answered
/// 200 within 15 s.
pub async fn burst_then_silence(gateway: &str, normal: &[u8]) -> (String, Vec<String>) {
    const DECLARED: usize = 16 << 20;
    let mut held = Vec::new();
    for i in 0..4 {
        let Ok(mut sock) = connect_from([127, 0, 4, 1], gateway).await else {
            continue;
        };
        let head = format!(
            "POST /scan/image/burst-{i}.jpg HTTP/1.1\r\nHost: g\r\nContent-Length: {DECLARED}\r\n\r\n"
        );
        if sock.write_all(head.as_bytes()).await.is_ok() {
            let body = vec![0xFFu8; DECLARED - 1000];
            let _ = tokio::time::timeout(Duration::from_secs(5), sock.write_all(&body)).await;
            held.push(sock);
        }
    }
    let started = Instant::now();
    let status = match connect_from([127, 0, 0, 1], gateway).await {
        Ok(mut sock) => {
            let head = format!(
                "POST /scan/image/after-burst.jpg HTTP/1.1\r\nHost: g\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                normal.len()
            );
            let sent = async {
                sock.write_all(head.as_bytes()).await?;
                sock.write_all(normal).await
            };
            match sent.await {
                Ok(()) => status_of(&mut sock, Duration::from_secs(15)).await,
                Err(_) => None,
            }
        }
        Err(_) => None,
    };
    let took = started.elapsed();
    let mut ends = Vec::new();
    for sock in &mut held {
        ends.push(status_of(sock, Duration::from_secs(20)).await);
    }
    let seen = format!(
        "burst-then-silent uploads: another client's upload {status:?} in {took:.1?}; the 4 silent ones ended {ends:?}"
    );
    let mut findings = Vec::new();
    if status != Some(200) || took > Duration::from_secs(15) {
        findings.push(format!(
            "burst-then-silent: another client's upload answered {status:?} after {took:?}"
        ));
    }
    if !ends.iter().all(|e| matches!(e, Some(408 | 429))) {
        findings.push(format!(
            "burst-then-silent: the silent uploads ended {ends:?}"
        ));
    }
    (seen, findings)
}
