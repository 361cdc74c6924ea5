//! The real `gateway` binary under 30 uploads that each stall after 15 MiB (issue #14, found
//! 3): its resident memory stays under 150 MB, because bodies are admitted against the memory
//! budget (`FACEMATCH_MAX_BUFFERED`) before they are read.

mod common;

use std::time::Duration;

use common::gateway_process::{GatewayProcess, rss_bytes};

use facematch_core::testing::{Namespace, remove_namespace};
use tokio::{io::AsyncWriteExt, net::TcpStream};

const UPLOADS: usize = 30;
const SENT: usize = 15 << 20;
const LIMIT_BYTES: u64 = 150_000_000;

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
    // One client sends all 30 here: the per-address share is the cap this test is not about.
    let gateway = GatewayProcess::start(&ns, &[("FACEMATCH_MAX_BUFFERED_PER_ADDRESS", "0")]).await;
    let (addr, pid) = (gateway.addr.clone(), gateway.pid());
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
