//! Consuming a queue: connection → channel → topology → `basic_qos` → consumer, all rebuilt
//! after any loss (lapin's own recovery does not restore qos). Deliveries go into a bounded
//! channel; on shutdown the consumer is cancelled and the channel closed.
//!
//! The scan feed consumes `facematch.scan.v2` and, while a deployment still has it, the retired
//! first-version queue (see `Topology::retire_legacy`). A watchdog makes a broker round trip
//! every few seconds under a deadline: a link that stays open but makes no progress is logged,
//! reported by `/healthz` ([`BrokerHealth`]) and rebuilt.

use std::{
    pin::Pin,
    time::{Duration, Instant},
};

use facematch_core::amqp::{
    Topology,
    lapin::{
        self, Channel, Connection, ConnectionProperties,
        message::Delivery,
        options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions},
        types::{FieldTable, ShortString},
    },
};
use futures_util::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};

use super::health::{BrokerHealth, PROBE_EVERY, PROBE_TIMEOUT};

const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest wait for the broker to answer a cancel or a close, so shutdown never hangs on it.
pub const BROKER_REPLY: Duration = Duration::from_secs(5);
/// Longest a connection attempt may take (a stalled link would otherwise hang it).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A delivery and when it arrived (for the queue-time histogram).
#[derive(Debug)]
pub struct Received {
    pub at: Instant,
    pub delivery: Delivery,
}

/// Which queue a consumer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Scan jobs (and the retired first-version queue while it exists).
    Scan,
    /// `facematch.dead`: jobs dead-lettered, to be marked failed.
    Dead,
}

/// Connection settings of the consumer.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub amqp_url: String,
    pub topology: Topology,
    pub prefetch: u16,
    pub feed: Feed,
    /// Records each broker round trip that succeeded.
    pub health: BrokerHealth,
}

type Deliveries = Pin<Box<dyn Stream<Item = Result<Delivery, lapin::Error>> + Send>>;

struct Link {
    connection: Connection,
    channel: Channel,
    tags: Vec<ShortString>,
    deliveries: Deliveries,
    /// Answers once a probe of the link failed or timed out.
    stalled: oneshot::Receiver<String>,
    watchdog: tokio::task::JoinHandle<()>,
}

/// Feeds deliveries into `tx` until `shutdown` turns true; reconnects after any failure.
/// Returns the last connection so the caller can close it after the final acks.
pub async fn consume(
    config: ConsumerConfig,
    tx: mpsc::Sender<Received>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<Connection> {
    // The link is judged from now on: every attempt must get an answer within the window.
    config.health.progressed();
    // Whether the retired first-version queue exists: looked for at the first connection and
    // again only while it is there (a passive declare of a missing queue logs a channel error).
    let mut legacy_seen = true;
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return None;
        }
        let connected = tokio::select! {
            c = tokio::time::timeout(CONNECT_TIMEOUT, connect(&config, &mut legacy_seen)) => {
                c.unwrap_or_else(|_| Err(format!("no answer within {CONNECT_TIMEOUT:?}")))
            }
            _ = shutdown.changed() => return None,
        };
        let mut link = match connected {
            Ok(link) => link,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    ?backoff,
                    silent_for = ?config.health.silent_for(),
                    feed = ?config.feed,
                    "cannot consume from the message broker"
                );
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return None,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        config.health.progressed();
        backoff = Duration::from_millis(100);
        tracing::info!(feed = ?config.feed, prefetch = config.prefetch, "consuming");
        loop {
            tokio::select! {
                next = link.deliveries.next() => match next {
                    Some(Ok(delivery)) => {
                        if tx.send(Received { at: Instant::now(), delivery }).await.is_err() {
                            link.watchdog.abort();
                            return Some(link.connection);
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "consumer failed; reconnecting");
                        break;
                    }
                    None => {
                        tracing::warn!("consumer closed by the broker; reconnecting");
                        break;
                    }
                },
                why = &mut link.stalled => {
                    let why = why.unwrap_or_else(|_| "watchdog stopped".into());
                    tracing::error!(
                        reason = %why,
                        feed = ?config.feed,
                        "the broker link makes no progress; reconnecting"
                    );
                    break;
                }
                _ = shutdown.changed() => {
                    link.watchdog.abort();
                    for tag in &link.tags {
                        let cancel = link.channel.basic_cancel(tag.clone(), BasicCancelOptions::default());
                        if tokio::time::timeout(BROKER_REPLY, cancel).await.is_err() {
                            tracing::warn!("the broker did not confirm the consumer's cancel");
                        }
                    }
                    tracing::info!(feed = ?config.feed, "stopped consuming");
                    return Some(link.connection);
                }
            }
        }
        link.watchdog.abort();
        // Deliveries of the dead channel cannot be acked; the broker redelivers them.
        let _ = tokio::time::timeout(
            BROKER_REPLY,
            link.connection.close(320, "reconnecting".into()),
        )
        .await;
    }
}

async fn connect(config: &ConsumerConfig, legacy_seen: &mut bool) -> Result<Link, String> {
    let fail = |what: &str, e: lapin::Error| format!("{what}: {e}");
    let connection = Connection::connect(&config.amqp_url, ConnectionProperties::default())
        .await
        .map_err(|e| fail("connect", e))?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| fail("channel", e))?;
    config
        .topology
        .declare(&channel)
        .await
        .map_err(|e| fail("declare", e))?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await
        .map_err(|e| fail("qos", e))?;
    let mut queues = Vec::new();
    match config.feed {
        Feed::Scan => {
            queues.push(config.topology.scan_queue());
            let legacy = if *legacy_seen {
                config
                    .topology
                    .retire_legacy(&connection)
                    .await
                    .map_err(|e| fail("retire the legacy queue", e))?
            } else {
                None
            };
            *legacy_seen = legacy.is_some();
            if let Some(legacy) = legacy {
                tracing::warn!(
                    queue = %legacy,
                    "draining the retired first-version scan queue (unbound from toWorker); \
                     delete it once no old gateway runs"
                );
                queues.push(legacy);
            }
        }
        Feed::Dead => queues.push(config.topology.dead_queue()),
    }
    let mut tags = Vec::new();
    let mut deliveries: Option<Deliveries> = None;
    for queue in &queues {
        let consumer = channel
            .basic_consume(
                queue.clone().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| fail("consume", e))?;
        tags.push(consumer.tag());
        deliveries = Some(match deliveries {
            None => Box::pin(consumer),
            Some(earlier) => Box::pin(futures_util::stream::select(earlier, consumer)),
        });
    }
    let deliveries = deliveries.ok_or_else(|| "no queue to consume".to_owned())?;
    let probe = connection
        .create_channel()
        .await
        .map_err(|e| fail("probe channel", e))?;
    let (stalled_tx, stalled) = oneshot::channel();
    let watchdog = tokio::spawn(watch_link(
        probe,
        queues[0].clone(),
        config.health.clone(),
        stalled_tx,
    ));
    Ok(Link {
        connection,
        channel,
        tags,
        deliveries,
        stalled,
        watchdog,
    })
}

/// Makes a broker round trip (a passive declare of `queue`) every [`PROBE_EVERY`]; records each
/// answer in `health` and reports the first failure or missed deadline on `stalled`.
async fn watch_link(
    probe: Channel,
    queue: String,
    health: BrokerHealth,
    stalled: oneshot::Sender<String>,
) {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let round_trip = probe.queue_declare(queue.clone().into(), passive, FieldTable::default());
        let why = match tokio::time::timeout(PROBE_TIMEOUT, round_trip).await {
            Ok(Ok(_)) => {
                health.progressed();
                continue;
            }
            Ok(Err(e)) => format!("probe failed: {e}"),
            Err(_) => format!("no answer to a probe within {PROBE_TIMEOUT:?}"),
        };
        let _ = stalled.send(why);
        return;
    }
}
