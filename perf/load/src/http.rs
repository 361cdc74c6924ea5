//! A lean HTTP/1.1 keep-alive client connection: enough for a load generator (fixed-length
//! requests, `Content-Length` answers), with no allocation per request beyond the answer, so
//! the generator costs the shared CPUs as little as possible.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// One answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One open connection; unusable after an error (drop it and connect again).
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    host: String,
    buf: Vec<u8>,
    /// The server said `Connection: close`.
    pub closed: bool,
    /// `Authorization: Bearer …` line sent with every request, when set.
    bearer: Option<String>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            host: addr.to_string(),
            buf: Vec::with_capacity(8192),
            closed: false,
            bearer: None,
        })
    }

    /// Sends `key` as the bearer key of every request on this connection.
    pub fn with_bearer(mut self, key: Option<&str>) -> Self {
        self.bearer = key.map(|k| format!("Authorization: Bearer {k}\r\n"));
        self
    }

    /// Sends `method path` with a body made of `parts` (written in order, not copied).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        parts: &[&[u8]],
    ) -> std::io::Result<Answer> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        if let Some(bearer) = &self.bearer {
            head.push_str(bearer);
        }
        if len > 0 || method == "POST" {
            head.push_str("Content-Type: application/octet-stream\r\n");
            head.push_str(&format!("Content-Length: {len}\r\n"));
        }
        head.push_str("\r\n");
        // Small parts ride with the head in one write; large ones are written as they are.
        let mut first = head.into_bytes();
        let mut rest = parts;
        while let Some((p, tail)) = rest.split_first() {
            if p.len() > 4096 {
                break;
            }
            first.extend_from_slice(p);
            rest = tail;
        }
        self.stream.write_all(&first).await?;
        for p in rest {
            self.stream.write_all(p).await?;
        }
        self.read_answer().await
    }

    async fn read_answer(&mut self) -> std::io::Result<Answer> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(invalid)?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| invalid("bad status line"))?;
        let mut length = None;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(invalid)?);
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                self.closed = true;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(invalid("chunked answers are not supported"));
            }
        }
        let length = length.ok_or_else(|| invalid("no content-length"))?;
        while self.buf.len() < head_end + length {
            self.fill().await?;
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        Ok(Answer { status, body })
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        let start = self.buf.len();
        self.buf.resize(start + 8192, 0);
        let n = self.stream.read(&mut self.buf[start..]).await?;
        self.buf.truncate(start + n);
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(e: impl ToString) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

/// A connection that reopens itself: after the server closed it (gunicorn's sync workers
/// close every connection) or after an error. For the end-to-end tool, whose requests are
/// idempotent; the load generator handles its connections itself.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    conn: Option<Conn>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, conn: None }
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        parts: &[&[u8]],
    ) -> std::io::Result<Answer> {
        let (mut conn, reused) = match self.conn.take() {
            Some(c) => (c, true),
            None => (Conn::connect(self.addr).await?, false),
        };
        let answer = match conn.request(method, path, parts).await {
            Ok(a) => a,
            // The server may have closed an idle connection: once more on a new one.
            Err(_) if reused => {
                conn = Conn::connect(self.addr).await?;
                conn.request(method, path, parts).await?
            }
            Err(e) => return Err(e),
        };
        if !conn.closed {
            self.conn = Some(conn);
        }
        Ok(answer)
    }
}
