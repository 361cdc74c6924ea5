//! Connections per client address: one address may hold at most a share of the server's
//! connection slots (`FACEMATCH_MAX_CONNECTIONS_PER_ADDRESS`). A connection beyond it is
//! answered 429 and closed at once, before any request is read, so one client cannot keep
//! everyone else in the listen backlog.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::{io::AsyncWriteExt, net::TcpStream};

/// Open connections per address.
type OpenCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Counts open connections per address under a cap (0: no cap).
#[derive(Debug, Clone, Default)]
pub struct PerAddress {
    cap: usize,
    open: OpenCounts,
}

/// One admitted connection; uncounted when dropped (counts nothing when there is no cap).
#[derive(Debug)]
pub struct Counted {
    counted: Option<(OpenCounts, IpAddr)>,
}

impl PerAddress {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            open: Arc::default(),
        }
    }

    /// Counts a connection from `address`; `None` when that address is at its cap.
    pub fn admit(&self, address: IpAddr) -> Option<Counted> {
        if self.cap == 0 {
            return Some(Counted { counted: None });
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(address).or_default();
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Counted {
            counted: Some((self.open.clone(), address)),
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let Some((open, address)) = &self.counted else {
            return;
        };
        let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(address) {
            *count -= 1;
            if *count == 0 {
                open.remove(address);
            }
        }
    }
}

/// Answers 429 on a connection refused for its address, then closes it (within a second,
/// whatever the client does).
pub async fn refuse(mut stream: TcpStream) {
    const BODY: &str = r#"{"error":{"code":"too_many_connections","message":"this address has as many connections open as it may (FACEMATCH_MAX_CONNECTIONS_PER_ADDRESS); retry shortly"}}"#;
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json; charset=utf-8\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_capped_and_its_places_come_back() {
        let per = PerAddress::new(2);
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        let first = per.admit(a).expect("1st");
        let _second = per.admit(a).expect("2nd");
        assert!(per.admit(a).is_none(), "3rd from the same address");
        assert!(per.admit(b).is_some(), "another address");
        drop(first);
        assert!(per.admit(a).is_some(), "a place came back");
        let uncapped = PerAddress::new(0);
        let held: Vec<Counted> = (0..3).map(|_| uncapped.admit(a).expect("no cap")).collect();
        assert!(
            uncapped.open.lock().expect("lock").is_empty(),
            "nothing counted"
        );
        drop(held);
    }
}
