//! The dead-letter queue's consumer: every job that reaches `facematch.dead` (the broker's
//! backstop delivery limit, or a worker's reject of a poison job) is marked `failed` with an
//! `error` that starts with `dead-lettered:` and says why, so nothing accepted stays `queued`
//! forever, and the gateway knows a re-upload may queue it again. The message is then acked:
//! its state in Redis is the record.

use facematch_core::amqp::{JobMeta, header_text, lapin::BasicProperties};
use tokio::sync::mpsc;

use super::{
    consumer::Received, metrics::Metrics, processor::Processor, settle::Settlement, step::StepError,
};

/// Why the broker dead-lettered a message, from its `x-first-death-*` headers.
pub fn death_reason(properties: &BasicProperties) -> String {
    let headers = properties.headers().clone().unwrap_or_default();
    let reason = header_text(&headers, "x-first-death-reason");
    let queue = header_text(&headers, "x-first-death-queue").unwrap_or_else(|| "?".into());
    match reason.as_deref() {
        Some("delivery_limit") => format!(
            "returned to {queue} more often than the broker's delivery limit ({}) allows",
            facematch_core::amqp::DELIVERY_LIMIT
        ),
        Some("rejected") => format!("rejected by a worker from {queue} as poison"),
        Some("expired") => format!("expired in {queue}"),
        Some("maxlen") => format!("dropped from {queue} by its length limit"),
        Some(other) => format!("{other} in {queue}"),
        None => "reason unknown".into(),
    }
}

/// Marks each dead-lettered job failed, then acks it; runs until `rx` closes.
pub async fn mark_failed(processor: Processor, mut rx: mpsc::Receiver<Received>) {
    let metrics: &Metrics = &processor.metrics;
    while let Some(Received { delivery, .. }) = rx.recv().await {
        let mut settlement = Settlement::new(delivery.acker, metrics.clone());
        let properties = delivery.properties;
        match JobMeta::from_properties(&properties) {
            Ok(meta) => {
                let store = processor.store_for(&meta);
                let reason = death_reason(&properties);
                let marked = processor
                    .retry("marking a dead-lettered job failed", || {
                        store.mark_dead_lettered(meta.hash, &reason)
                    })
                    .await;
                match marked {
                    Ok(true) => {
                        tracing::warn!(hash = %meta.hash, name = %meta.name, %reason, "job dead-lettered; marked failed");
                        metrics.job("dead_lettered");
                    }
                    Ok(false) => {
                        tracing::info!(hash = %meta.hash, %reason, "dead-lettered job was already done or failed");
                    }
                    // Its record refuses the mark (damaged data): nothing more can be done
                    // for it, and requeueing would loop for ever.
                    Err(StepError::Store(e)) if !e.is_transient() => {
                        tracing::error!(hash = %meta.hash, error = %e, "a dead-lettered job's stored data is damaged; dropping it");
                        metrics.job("damaged");
                    }
                    // Shutting down with Redis away: back to the queue.
                    Err(_) => {
                        settlement.requeue().await;
                        continue;
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, bytes = delivery.data.len(), "a message that is not a job was dead-lettered; dropping it");
                metrics.job("malformed");
            }
        }
        settlement.ack().await;
    }
}
