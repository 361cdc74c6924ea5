//! Raw HTTP/1.1 from a chosen loopback address (feature `test-support`): what the crowding tests
//! and the chaos run use to play many clients at once, each address one client (any 127.x.y.z
//! is this machine).

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::AsyncReadExt,
    net::{TcpSocket, TcpStream},
};

/// A connection to `server` (`host:port`) from the loopback address `source`.
pub async fn connect_from(source: [u8; 4], server: &str) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    let addr = server
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    socket.connect(addr).await
}

/// The status of the answer on `sock` (its head only is read), if one came within `within`.
pub async fn status_of(sock: &mut TcpStream, within: Duration) -> Option<u16> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()?;
    String::from_utf8_lossy(&head)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}
