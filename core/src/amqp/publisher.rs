//! A self-healing publisher: one supervised connection with a confirm channel for jobs and a
//! plain channel for log lines. While the broker is unreachable every publish fails fast with
//! [`PublishError::Unavailable`]; a background task reconnects with backoff.
//!
//! A link can also stall: the TCP connection stays up but nothing comes back. The supervisor
//! therefore probes the confirm channel every second (a passive declare of the exchange jobs
//! go to, which needs a round trip) and drops a link that does not answer within
//! [`PROBE_TIMEOUT`]: readiness fails within about four seconds of a stall and comes back by
//! itself once a fresh connection answers. A publish that was sent but not confirmed
//! ([`PublishError::may_be_queued`]) may still reach the queue when a stalled link resumes.
//!
//! A process that only forwards its log lines (a worker) starts one with
//! [`Publisher::start_logs_only`]: one plain channel, no confirm channel, no probes, and only
//! the `logs` exchange declared.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
    options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions},
    types::FieldTable,
};
use tokio::sync::{Notify, RwLock};
use tracing::Instrument;

use super::{JobMeta, SCAN_ROUTING_KEY, Topology};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long the broker may take to answer a probe before the link counts as stalled.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a publish did not end with the broker's ack.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the message broker is unavailable")]
    Unavailable,
    /// Sent (or buffered for sending) but not confirmed in time: it may still be queued.
    #[error("the broker did not confirm within {0:?}")]
    Timeout(Duration),
    /// Sent, then the link failed before the confirm: it may have been queued.
    #[error("the link to the broker failed before it confirmed: {0}")]
    Lost(lapin::Error),
    #[error("the broker refused the message")]
    Nacked,
    #[error("the broker could not route the message to a queue")]
    Unroutable,
    #[error("publishing failed: {0}")]
    Amqp(#[from] lapin::Error),
}

impl PublishError {
    /// Whether the message may have reached the queue despite the error (the broker got it
    /// but its answer was lost or late); otherwise it certainly was not queued.
    pub fn may_be_queued(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Lost(_))
    }
}

struct Live {
    connection: Connection,
    /// The confirm channel; `None` for a logs-only publisher.
    jobs: Option<Channel>,
    logs: Channel,
}

impl Live {
    fn connected(&self) -> bool {
        self.connection.status().connected()
            && self.jobs.as_ref().is_none_or(|j| j.status().connected())
            && self.logs.status().connected()
    }
}

struct Inner {
    url: String,
    topology: Topology,
    /// Whether jobs are published (a confirm channel, probed), or log lines only.
    jobs: bool,
    live: RwLock<Option<Arc<Live>>>,
    broken: Notify,
    connects: AtomicU64,
}

/// Cloneable handle; the supervisor task lives as long as any handle.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topology", &self.inner.topology)
            .finish()
    }
}

impl Publisher {
    /// Starts the supervisor; the first connection is attempted at once, in the background.
    pub fn start(url: impl Into<String>, topology: Topology) -> Self {
        Self::start_with(url.into(), topology, true)
    }

    /// A publisher of log lines only: [`Publisher::publish_job`] always answers
    /// [`PublishError::Unavailable`].
    pub fn start_logs_only(url: impl Into<String>, topology: Topology) -> Self {
        Self::start_with(url.into(), topology, false)
    }

    fn start_with(url: String, topology: Topology, jobs: bool) -> Self {
        let inner = Arc::new(Inner {
            url,
            topology,
            jobs,
            live: RwLock::new(None),
            broken: Notify::new(),
            connects: AtomicU64::new(0),
        });
        tokio::spawn(supervise(Arc::downgrade(&inner)));
        Self { inner }
    }

    /// The topology this publisher declares and publishes to.
    pub fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    /// Whether a connection with open channels is held now.
    pub async fn is_ready(&self) -> bool {
        self.current().await.is_some()
    }

    /// How many times a connection was established (1 after the first).
    pub fn connect_count(&self) -> u64 {
        self.inner.connects.load(Ordering::Relaxed)
    }

    /// Waits until ready or until `timeout` passes; returns readiness.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.is_ready().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.is_ready().await
    }

    async fn current(&self) -> Option<Arc<Live>> {
        let live = self.inner.live.read().await.clone()?;
        if live.connected() {
            Some(live)
        } else {
            self.inner.broken.notify_one();
            None
        }
    }

    /// Publishes a job (mandatory, persistent) and waits for the broker's ack.
    pub async fn publish_job(&self, job: &JobMeta, body: &[u8]) -> Result<(), PublishError> {
        let span = tracing::info_span!("amqp.publish", hash = %job.hash, otel.kind = "producer");
        async {
            let live = self.current().await.ok_or(PublishError::Unavailable)?;
            let jobs = live.jobs.as_ref().ok_or(PublishError::Unavailable)?;
            let mut meta = job.clone();
            meta.trace_headers = super::trace_context::inject(&tracing::Span::current());
            let result = self.confirm(jobs, &meta.properties(), body).await;
            if matches!(
                result,
                Err(PublishError::Amqp(_) | PublishError::Timeout(_) | PublishError::Lost(_))
            ) {
                self.inner.broken.notify_one();
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn confirm(
        &self,
        jobs: &Channel,
        properties: &BasicProperties,
        body: &[u8],
    ) -> Result<(), PublishError> {
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let publish = async {
            let confirm = jobs
                .basic_publish(
                    self.inner.topology.to_worker().into(),
                    SCAN_ROUTING_KEY.into(),
                    options,
                    body,
                    properties.clone(),
                )
                .await?;
            confirm.await.map_err(PublishError::Lost)
        };
        match tokio::time::timeout(CONFIRM_TIMEOUT, publish).await {
            Err(_) => Err(PublishError::Timeout(CONFIRM_TIMEOUT)),
            Ok(Err(e)) => Err(e),
            Ok(Ok(Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(Confirmation::Ack(Some(_)))) => Err(PublishError::Unroutable),
            Ok(Ok(Confirmation::Nack(_) | Confirmation::NotRequested)) => Err(PublishError::Nacked),
        }
    }

    /// Publishes one log line on the `logs` topic exchange, best effort (no confirm).
    pub async fn publish_log(&self, routing_key: &str, line: &str) -> Result<(), PublishError> {
        let live = self.current().await.ok_or(PublishError::Unavailable)?;
        live.logs
            .basic_publish(
                self.inner.topology.logs().into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                line.as_bytes(),
                BasicProperties::default().with_content_type("text/plain".into()),
            )
            .await?;
        Ok(())
    }

    /// Closes the connection (graceful shutdown).
    pub async fn close(&self) {
        if let Some(live) = self.inner.live.write().await.take() {
            let _ = live.connection.close(200, "shutdown".into()).await;
        }
    }
}

async fn connect(inner: &Inner) -> Result<Live, lapin::Error> {
    let connection = Connection::connect(&inner.url, ConnectionProperties::default()).await?;
    let jobs = if inner.jobs {
        let jobs = connection.create_channel().await?;
        jobs.confirm_select(ConfirmSelectOptions::default()).await?;
        inner.topology.declare(&jobs).await?;
        Some(jobs)
    } else {
        None
    };
    let logs = connection.create_channel().await?;
    if jobs.is_none() {
        inner.topology.declare_logs(&logs).await?;
    }
    Ok(Live {
        connection,
        jobs,
        logs,
    })
}

/// One round trip on the confirm channel: a passive declare of the jobs exchange.
async fn probe(jobs: &Channel, topology: &Topology) -> bool {
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    let declare = jobs.exchange_declare(
        topology.to_worker().into(),
        ExchangeKind::Direct,
        passive,
        FieldTable::default(),
    );
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, declare).await,
        Ok(Ok(()))
    )
}

/// Keeps one live connection while any handle exists: connect, watch, reconnect with backoff.
async fn supervise(weak: std::sync::Weak<Inner>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        match tokio::time::timeout(CONNECT_TIMEOUT, connect(&inner)).await {
            Ok(Ok(live)) => {
                backoff = Duration::from_millis(100);
                inner.connects.fetch_add(1, Ordering::Relaxed);
                tracing::info!(target: "facematch::amqp", "connected to the message broker");
                let live = Arc::new(live);
                *inner.live.write().await = Some(live.clone());
                drop(inner);
                // Watch: a publish failure notifies at once, the status check catches a closed
                // link, the probe a stalled one.
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    let notified = inner.broken.notified();
                    if !live.connected() {
                        break;
                    }
                    let next_probe = async {
                        tokio::time::sleep(PROBE_EVERY).await;
                        match &live.jobs {
                            Some(jobs) => !probe(jobs, &inner.topology).await,
                            // No confirm channel (logs only): the status alone is watched.
                            None => false,
                        }
                    };
                    tokio::select! {
                        () = notified => {}
                        stalled = next_probe => if stalled {
                            tracing::warn!(
                                target: "facematch::amqp",
                                timeout = ?PROBE_TIMEOUT,
                                "the message broker stopped answering; dropping the link"
                            );
                            break;
                        },
                    }
                }
                let Some(inner) = weak.upgrade() else { return };
                *inner.live.write().await = None;
                tracing::warn!(target: "facematch::amqp", "lost the message broker; reconnecting");
                // A stalled link would never answer the close.
                let _ = tokio::time::timeout(
                    CLOSE_TIMEOUT,
                    live.connection.close(320, "reconnecting".into()),
                )
                .await;
            }
            Ok(Err(e)) => {
                tracing::warn!(target: "facematch::amqp", error = %e, ?backoff, "cannot reach the message broker");
            }
            Err(_) => {
                tracing::warn!(target: "facematch::amqp", ?backoff, "connecting to the message broker timed out");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ImageHash, amqp::Source, testing::TEST_AMQP_URL};

    #[tokio::test]
    async fn a_logs_only_publisher_forwards_lines_and_publishes_no_job() {
        let topology = Topology::new(format!("t-logs-only-{:08x}.", rand::random::<u32>()));
        let publisher = Publisher::start_logs_only(TEST_AMQP_URL, topology.clone());
        assert!(
            publisher.wait_ready(Duration::from_secs(10)).await,
            "RabbitMQ must run on {TEST_AMQP_URL}"
        );
        let live = publisher.current().await.expect("live");
        assert!(live.jobs.is_none(), "no confirm channel");
        publisher
            .publish_log("host.worker.info", "a line")
            .await
            .expect("a log line is published");
        let job = JobMeta {
            hash: ImageHash::of(b"x"),
            collection: crate::Collection::default(),
            epoch: None,
            name: "x.png".into(),
            source: Source::Upload,
            content_type: "image/png".into(),
            trace_headers: Vec::new(),
        };
        assert!(matches!(
            publisher.publish_job(&job, b"x").await,
            Err(PublishError::Unavailable)
        ));
        // Only the `logs` exchange was declared; remove it.
        let channel = live.connection.create_channel().await.expect("channel");
        channel
            .exchange_delete(
                topology.logs().into(),
                lapin::options::ExchangeDeleteOptions::default(),
            )
            .await
            .expect("delete the logs exchange");
        publisher.close().await;
    }
}
