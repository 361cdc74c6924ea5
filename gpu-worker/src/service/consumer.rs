//! Consuming `facematch.scan`: connection → channel → topology → `basic_qos` → consumer, all
//! rebuilt after any loss (lapin's own recovery does not restore qos). Deliveries go into a
//! bounded channel; on shutdown the consumer is cancelled and the channel closed.

use std::time::{Duration, Instant};

use facematch_core::amqp::{
    Topology,
    lapin::{
        Connection, ConnectionProperties,
        message::Delivery,
        options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
        types::FieldTable,
    },
};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest wait for the broker to answer a cancel or a close, so shutdown never hangs on it.
pub const BROKER_REPLY: Duration = Duration::from_secs(5);

/// A delivery and when it arrived (for the queue-time histogram).
#[derive(Debug)]
pub struct Received {
    pub at: Instant,
    pub delivery: Delivery,
}

/// Connection settings of the consumer.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub amqp_url: String,
    pub topology: Topology,
    pub prefetch: u16,
}

/// Feeds deliveries into `tx` until `shutdown` turns true; reconnects after any failure.
/// Returns the last connection so the caller can close it after the final acks.
pub async fn consume(
    config: ConsumerConfig,
    tx: mpsc::Sender<Received>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<Connection> {
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return None;
        }
        let connected = tokio::select! {
            c = tokio::time::timeout(Duration::from_secs(10), connect(&config)) => {
                c.unwrap_or_else(|_| Err(facematch_core::amqp::lapin::Error::from(
                    facematch_core::amqp::lapin::ErrorKind::InvalidConnectionState(
                        facematch_core::amqp::lapin::ConnectionState::Closed,
                    ),
                )))
            }
            _ = shutdown.changed() => return None,
        };
        let (connection, channel, mut consumer) = match connected {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, ?backoff, "cannot consume from the message broker");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return None,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        tracing::info!(queue = %config.topology.scan_queue(), prefetch = config.prefetch, "consuming");
        loop {
            tokio::select! {
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        if tx.send(Received { at: Instant::now(), delivery }).await.is_err() {
                            return Some(connection);
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
                _ = shutdown.changed() => {
                    let cancel = channel.basic_cancel(consumer.tag(), BasicCancelOptions::default());
                    if tokio::time::timeout(BROKER_REPLY, cancel).await.is_err() {
                        tracing::warn!("the broker did not confirm the consumer's cancel");
                    }
                    tracing::info!("stopped consuming");
                    return Some(connection);
                }
            }
        }
        // Deliveries of the dead channel cannot be acked; the broker redelivers them.
        let _ =
            tokio::time::timeout(BROKER_REPLY, connection.close(320, "reconnecting".into())).await;
    }
}

async fn connect(
    config: &ConsumerConfig,
) -> Result<
    (
        Connection,
        facematch_core::amqp::lapin::Channel,
        facematch_core::amqp::lapin::Consumer,
    ),
    facematch_core::amqp::lapin::Error,
> {
    let connection = Connection::connect(&config.amqp_url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    config.topology.declare(&channel).await?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            config.topology.scan_queue().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((connection, channel, consumer))
}
