//! The real `gateway` binary under 30 uploads that each stall after 15 MiB (issue #14, found
//! 3): its resident memory stays under 150 MB, because bodies are admitted against the memory
//! budget (`FACEMATCH_MAX_BUFFERED`) before they are read.

mod common;

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use facematch_core::testing::{Namespace, remove_namespace};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const UPLOADS: usize = 30;
const SENT: usize = 15 << 20;
const LIMIT_BYTES: u64 = 150_000_000;

/// Kills the gateway even when an assertion fails.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

async fn free_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("addr").port()
}

async fn wait_healthy(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut sock) = TcpStream::connect(addr).await {
            let _ = sock
                .write_all(b"GET /readyz HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n")
                .await;
            let mut answer = String::new();
            let _ = sock.read_to_string(&mut answer).await;
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the gateway did not become ready");
}

/// Sends the head of a 16 MiB upload and then up to 15 MiB of it; keeps the socket open.
async fn stalled_upload(addr: String, i: usize) -> (TcpStream, usize) {
    let mut sock = TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /scan/image/stall-{i}.png HTTP/1.1\r\nHost: g\r\nContent-Length: {}\r\n\r\n",
        (16 << 20) - 1
    );
    sock.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![0x89u8; 256 << 10];
    let mut sent = 0;
    // A refused upload is answered and closed, so writing fails or stops being read.
    while sent < SENT {
        match tokio::time::timeout(Duration::from_secs(3), sock.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            _ => break,
        }
    }
    (sock, sent)
}

#[tokio::test]
async fn thirty_stalled_uploads_keep_the_gateway_under_150_mb() {
    let ns = Namespace::new("rss").await;
    let addr = format!("127.0.0.1:{}", free_port().await);
    let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env("FACEMATCH_LISTEN", &addr)
        .env("FACEMATCH_AUTH", "off")
        .env("FACEMATCH_AMQP_URL", common::AMQP_URL)
        .env("FACEMATCH_AMQP_PREFIX", format!("{}.", ns.id))
        .env("FACEMATCH_REDIS_URL", common::REDIS_URL)
        .env("FACEMATCH_KEY_PREFIX", format!("{}:", ns.id))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the gateway binary");
    let gateway = Gateway(child);
    let pid = gateway.0.id();
    wait_healthy(&addr).await;
    let baseline = rss_bytes(pid);

    let uploads: Vec<_> = (0..UPLOADS)
        .map(|i| tokio::spawn(stalled_upload(addr.clone(), i)))
        .collect();
    let mut held = Vec::new();
    let mut peak = baseline;
    for upload in uploads {
        held.push(upload.await.expect("upload task"));
        peak = peak.max(rss_bytes(pid));
    }
    // Everything is sent or refused; the stalled ones stay open. Let the gateway settle.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak = peak.max(rss_bytes(pid));
    }
    let fully_sent = held.iter().filter(|(_, sent)| *sent >= SENT).count();
    eprintln!(
        "gateway RSS: baseline {} MB, peak {} MB with {UPLOADS} uploads stalled ({fully_sent} sent all 15 MiB)",
        baseline / 1_000_000,
        peak / 1_000_000
    );
    assert!(
        fully_sent >= 1,
        "some uploads must be admitted and buffered"
    );
    assert!(
        peak < LIMIT_BYTES,
        "gateway RSS {} MB with {UPLOADS} stalled uploads",
        peak / 1_000_000
    );
    drop(held);
    drop(gateway);
    remove_namespace(&ns.store, &ns.topology, &ns.inspector).await;
}
