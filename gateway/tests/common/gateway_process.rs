//! The real `gateway` binary in a test's namespace, killed when dropped, and what tests read
//! of it from outside: its resident memory, its readiness.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use facematch_core::testing::Namespace;
pub use facematch_testkit::process::rss_bytes;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A running gateway binary (keys off, on 127.0.0.1), killed even when an assertion fails.
pub struct GatewayProcess {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl GatewayProcess {
    /// Starts the gateway in `ns` with extra `env` settings and waits until it is ready.
    pub async fn start(ns: &Namespace, env: &[(&str, &str)]) -> Self {
        let addr = format!("127.0.0.1:{}", free_port().await);
        let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
        command
            .env("FACEMATCH_LISTEN", &addr)
            .env("FACEMATCH_AUTH", "off")
            .env("FACEMATCH_AMQP_URL", super::AMQP_URL)
            .env("FACEMATCH_AMQP_PREFIX", format!("{}.", ns.id))
            .env("FACEMATCH_REDIS_URL", super::REDIS_URL)
            .env("FACEMATCH_KEY_PREFIX", format!("{}:", ns.id))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start the gateway binary");
        let gateway = Self { child, addr };
        wait_healthy(&gateway.addr).await;
        gateway
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port free on 127.0.0.1 now.
pub async fn free_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Waits (up to 30 s) until `GET /readyz` on `addr` answers 200.
pub async fn wait_healthy(addr: &str) {
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
