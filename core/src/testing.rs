//! Test support shared by the crates' integration tests (feature `test-support`): a TCP
//! proxy a test can cut and restore (a broker or Redis outage) or stall and resume (a link
//! that stays open but carries nothing).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// A TCP forwarder on 127.0.0.1 that the test owns.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
    stalled: watch::Sender<bool>,
    held: Arc<AtomicUsize>,
    forwarded: Arc<AtomicUsize>,
}

/// Copies `from` to `to`, holding each chunk while the proxy is stalled (counted in `held`).
async fn forward(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut stalled: watch::Receiver<bool>,
    held: Arc<AtomicUsize>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if *stalled.borrow() {
            held.fetch_add(1, Ordering::SeqCst);
        }
        if stalled.wait_for(|s| !*s).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Proxy {
    /// Listens on 127.0.0.1 (random port) and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let open = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let (stalled, _) = watch::channel(false);
        let held = Arc::new(AtomicUsize::new(0));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let (open2, cuts2, stalled2, held2, forwarded2) = (
            open.clone(),
            cuts.clone(),
            stalled.clone(),
            held.clone(),
            forwarded.clone(),
        );
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !open2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                forwarded2.fetch_add(1, Ordering::SeqCst);
                let mut cut = cuts2.subscribe();
                let (up, down) = (stalled2.subscribe(), stalled2.subscribe());
                let (held_up, held_down) = (held2.clone(), held2.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (in_read, in_write) = inbound.split();
                    let (out_read, out_write) = outbound.into_split();
                    tokio::select! {
                        _ = forward(in_read, out_write, up, held_up) => {}
                        _ = forward(out_read, in_write, down, held_down) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            open,
            cuts,
            stalled,
            held,
            forwarded,
        }
    }

    /// Connections accepted and forwarded since the proxy started (not those refused while
    /// cut).
    pub fn connections(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }

    /// Chunks that arrived while stalled (either way), since the proxy started: a test
    /// waits on it to know a request is caught in the stall.
    pub fn held_chunks(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Keeps every connection open but forwards nothing, either way, until [`Self::resume`].
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Forwards again what a stall held back.
    pub fn resume(&self) {
        self.stalled.send_replace(false);
    }

    /// Closes every forwarded connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// Parses Prometheus text exposition into `series → value` (`name{labels}` as written),
/// checking that every sample line is well formed and every family has a `# TYPE`.
pub fn parse_prometheus(text: &str) -> Result<std::collections::HashMap<String, f64>, String> {
    let mut typed = std::collections::HashSet::new();
    let mut out = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let name = parts.next().ok_or(format!("bad TYPE line {line:?}"))?;
            match parts.next() {
                Some("counter" | "gauge" | "histogram" | "summary" | "untyped") => {}
                _ => return Err(format!("bad TYPE line {line:?}")),
            }
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .ok_or(format!("no value in {line:?}"))?;
        let value: f64 = value
            .parse()
            .map_err(|_| format!("bad value in {line:?}"))?;
        let name = series.split('{').next().unwrap_or(series);
        if series.contains('{') && !series.ends_with('}') {
            return Err(format!("bad labels in {line:?}"));
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        if !typed.contains(family) {
            return Err(format!("no # TYPE for {name}"));
        }
        out.insert(series.to_owned(), value);
    }
    Ok(out)
}

/// A tiny PNG whose header claims `width`×`height` pixels: a decompression bomb for any size
/// beyond the limits, readable up to its header (valid CRCs, a token IDAT, IEND).
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    };
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

/// Deletes every Redis key under the store's prefix (a test's clean-up).
pub async fn delete_prefixed(store: &crate::store::Store) -> Result<(), crate::store::StoreError> {
    use crate::store::redis;
    let mut conn = store.conn().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", store.keys().prefix()))
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
    }
    Ok(())
}

/// RabbitMQ on this machine, as the tests expect it.
pub const TEST_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Redis on this machine, as the tests expect it.
pub const TEST_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// One test's private corner of the shared Redis and RabbitMQ: a unique id used as key prefix
/// (`{id}:`) and name prefix (`{id}.`), with the topology already declared through a direct
/// connection (so it exists even when the code under test goes through a cut proxy).
#[derive(Debug)]
pub struct Namespace {
    pub id: String,
    pub topology: crate::amqp::Topology,
    pub store: crate::store::Store,
    /// A direct broker connection for declaring, inspecting and cleaning up.
    pub inspector: lapin::Connection,
}

impl Namespace {
    /// A fresh namespace named after `tag`; panics with a clear message if a service is down.
    pub async fn new(tag: &str) -> Self {
        let id = format!("t-{tag}-{:08x}", rand::random::<u32>());
        let topology = crate::amqp::Topology::new(format!("{id}."));
        let store =
            crate::store::Store::open(TEST_REDIS_URL, &format!("{id}:")).expect("redis url");
        let inspector =
            lapin::Connection::connect(TEST_AMQP_URL, lapin::ConnectionProperties::default())
                .await
                .expect("RabbitMQ must run on 127.0.0.1:5672");
        let channel = inspector.create_channel().await.expect("channel");
        topology.declare(&channel).await.expect("declare topology");
        Self {
            id,
            topology,
            store,
            inspector,
        }
    }
}

/// Removes a namespace's keys, queues and exchanges and closes its connection. Each step is
/// tried a few times: on a loaded machine the broker may time out deleting a quorum queue, or
/// have closed the inspector's connection, and a test's clean-up should not fail the test
/// for that.
pub async fn remove_namespace(
    store: &crate::store::Store,
    topology: &crate::amqp::Topology,
    inspector: &lapin::Connection,
) {
    retry_cleanup("deleting the test's Redis keys", || delete_prefixed(store)).await;
    retry_cleanup("deleting the test's queues and exchanges", || async {
        // A channel error closes the channel, and the broker may have closed the whole
        // connection: each try takes a fresh channel, on a fresh connection if need be.
        let channel = match inspector.create_channel().await {
            Ok(channel) => channel,
            Err(_) => {
                lapin::Connection::connect(TEST_AMQP_URL, lapin::ConnectionProperties::default())
                    .await?
                    .create_channel()
                    .await?
            }
        };
        topology.delete(&channel).await
    })
    .await;
    let _ = inspector.close(200, "done".into()).await;
}

/// Runs a clean-up `step` until it succeeds, at most [`CLEANUP_TRIES`] times a second apart;
/// panics with the last error.
async fn retry_cleanup<E, F, Fut>(what: &str, mut step: F)
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    for attempt in 1..=CLEANUP_TRIES {
        match step().await {
            Ok(()) => return,
            Err(e) if attempt == CLEANUP_TRIES => {
                panic!("{what} failed {CLEANUP_TRIES} times; the last error: {e}")
            }
            Err(e) => {
                eprintln!("{what} failed (try {attempt} of {CLEANUP_TRIES}): {e}; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

const CLEANUP_TRIES: u32 = 5;
