//! Settling a delivery with the broker exactly once. A job owns its delivery's [`Acker`] and
//! each settlement takes it, so a job can be neither settled twice nor asked afterwards
//! whether it still needs settling: [`Settlement::is_pending`] is what the processor's final
//! sweep requeues, so no delivery is left holding a prefetch slot.

use std::time::Duration;

use facematch_core::amqp::lapin::{
    Acker,
    options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions},
};

/// Longest wait for the broker connection to take an ack, nack or reject.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A delivery's acker until the delivery is settled.
#[derive(Debug)]
pub struct Settlement(Option<Acker>);

impl Settlement {
    pub fn new(acker: Acker) -> Self {
        Self(Some(acker))
    }

    /// Whether the delivery is still unsettled.
    pub fn is_pending(&self) -> bool {
        self.0.is_some()
    }

    /// Done with: the broker forgets the message.
    pub async fn ack(&mut self) {
        if let Some(acker) = self.0.take() {
            settle("ack", acker.ack(BasicAckOptions::default())).await;
        }
    }

    /// Back to the queue, for this or another worker.
    pub async fn requeue(&mut self) {
        if let Some(acker) = self.0.take() {
            let options = BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            };
            settle("requeue", acker.nack(options)).await;
        }
    }

    /// To the dead-letter queue.
    pub async fn reject(&mut self) {
        if let Some(acker) = self.0.take() {
            settle(
                "reject",
                acker.reject(BasicRejectOptions { requeue: false }),
            )
            .await;
        }
    }
}

/// Waits for the broker connection to take an ack, nack or reject, at most
/// [`SETTLE_TIMEOUT`]. After a failure or a timeout the delivery may still be settled later,
/// or redelivered by the broker when the channel closes; a job's writes are idempotent.
async fn settle<E: std::fmt::Display>(
    what: &str,
    op: impl std::future::Future<Output = Result<bool, E>>,
) {
    match tokio::time::timeout(SETTLE_TIMEOUT, op).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "{what} failed; the job may be redelivered"),
        Err(_) => tracing::warn!("{what} timed out; the job may be redelivered"),
    }
}
