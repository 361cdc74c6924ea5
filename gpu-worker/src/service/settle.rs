//! Settling a delivery with the broker exactly once. A job owns its delivery's [`Acker`] and
//! each settlement takes it, so a job can be neither settled twice nor asked afterwards
//! whether it still needs settling: [`Settlement::is_pending`] is what the processor's final
//! sweep requeues, so no delivery is left holding a prefetch slot.

use std::time::Duration;

use facematch_core::amqp::lapin::{
    Acker,
    options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions},
};

use super::Metrics;

/// Longest wait for the broker connection to take an ack, nack or reject.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A delivery's acker until the delivery is settled, and where a failed settlement is counted.
#[derive(Debug)]
pub struct Settlement {
    acker: Option<Acker>,
    metrics: Metrics,
}

impl Settlement {
    pub fn new(acker: Acker, metrics: Metrics) -> Self {
        Self {
            acker: Some(acker),
            metrics,
        }
    }

    /// Whether the delivery is still unsettled.
    pub fn is_pending(&self) -> bool {
        self.acker.is_some()
    }

    /// Done with: the broker forgets the message.
    pub async fn ack(&mut self) {
        if let Some(acker) = self.acker.take() {
            settle(&self.metrics, "ack", acker.ack(BasicAckOptions::default())).await;
        }
    }

    /// Back to the queue, for this or another worker.
    pub async fn requeue(&mut self) {
        if let Some(acker) = self.acker.take() {
            let options = BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            };
            settle(&self.metrics, "requeue", acker.nack(options)).await;
        }
    }

    /// To the dead-letter queue.
    pub async fn reject(&mut self) {
        if let Some(acker) = self.acker.take() {
            settle(
                &self.metrics,
                "reject",
                acker.reject(BasicRejectOptions { requeue: false }),
            )
            .await;
        }
    }
}

/// Waits for the broker connection to take an ack, nack or reject, at most
/// [`SETTLE_TIMEOUT`]; a failure or a timeout is logged and counted. The delivery may then
/// still be settled later, or redelivered by the broker when the channel closes; a job's writes
/// are idempotent.
async fn settle<E: std::fmt::Display>(
    metrics: &Metrics,
    what: &'static str,
    op: impl std::future::Future<Output = Result<bool, E>>,
) {
    match tokio::time::timeout(SETTLE_TIMEOUT, op).await {
        Ok(Ok(_)) => return,
        Ok(Err(e)) => tracing::warn!(error = %e, "{what} failed; the job may be redelivered"),
        Err(_) => tracing::warn!("{what} timed out; the job may be redelivered"),
    }
    metrics.settle_failure(what);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_settlement_the_broker_does_not_take_is_counted() {
        let metrics = Metrics::default();
        settle(&metrics, "ack", async { Ok::<bool, String>(true) }).await;
        settle(&metrics, "ack", async { Err::<bool, _>("channel closed") }).await;
        settle(&metrics, "requeue", async {
            Err::<bool, _>("channel closed")
        })
        .await;
        let counted =
            facematch_core::testing::parse_prometheus(&metrics.registry().render()).expect("text");
        assert_eq!(
            counted.get(r#"facematch_worker_settle_failures_total{op="ack"}"#),
            Some(&1.0)
        );
        assert_eq!(
            counted.get(r#"facematch_worker_settle_failures_total{op="requeue"}"#),
            Some(&1.0)
        );
    }
}
