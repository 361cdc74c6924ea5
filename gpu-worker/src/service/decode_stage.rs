//! Turning deliveries into decoded jobs: read the job's properties, open its span under the
//! trace parent it carries, and decode the image on the blocking pool. The delivery's acker
//! never enters a decode task: whatever happens to the task, the delivery is settled (a task
//! that fails puts its delivery back in the queue).

use std::{future::Future, sync::Arc, time::Instant};

use facematch_core::amqp::{
    JobMeta, MalformedJob,
    lapin::{BasicProperties, message::Delivery},
    trace_context,
};
use image::RgbImage;
use tokio::sync::Semaphore;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{Metrics, consumer::Received, settle::Settlement};
use crate::decode::{DecodeLimits, decode_image_with};

/// One job of a batch, ready for the engine (or already failed).
#[derive(Debug)]
pub struct DecodedJob {
    /// Settles the delivery, once.
    pub settlement: Settlement,
    /// When the delivery arrived.
    pub received: Instant,
    pub meta: Result<JobMeta, MalformedJob>,
    /// The upright RGB image, or why it cannot be decoded (a permanent failure).
    pub image: Result<RgbImage, String>,
    /// The job's span, child of the gateway's publish span.
    pub span: tracing::Span,
}

/// Decodes a batch, at most `limiter`'s permits at once, each image within `limits`. A job
/// whose decode task fails (a panic outside the decoder) is requeued here, not dropped.
pub async fn decode_batch(
    deliveries: Vec<Received>,
    limiter: Arc<Semaphore>,
    limits: DecodeLimits,
    metrics: &Metrics,
) -> Vec<DecodedJob> {
    run_decoders(deliveries, metrics, move |data, properties, redelivered| {
        decode_one(data, properties, redelivered, limiter.clone(), limits)
    })
    .await
}

/// Runs `decode` on each delivery in its own task; the ackers stay here, so a task that fails
/// puts its delivery back in the queue.
async fn run_decoders<F, Fut>(
    deliveries: Vec<Received>,
    metrics: &Metrics,
    decode: F,
) -> Vec<DecodedJob>
where
    F: Fn(Vec<u8>, BasicProperties, bool) -> Fut,
    Fut: Future<Output = Decoded> + Send + 'static,
{
    let tasks: Vec<_> = deliveries
        .into_iter()
        .map(|Received { at, delivery }| {
            let Delivery {
                data,
                acker,
                properties,
                redelivered,
                ..
            } = delivery;
            let task = tokio::spawn(decode(data, properties, redelivered));
            (Settlement::new(acker, metrics.clone()), at, task)
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for (mut settlement, received, task) in tasks {
        match task.await {
            Ok(Decoded { meta, image, span }) => out.push(DecodedJob {
                settlement,
                received,
                meta,
                image,
                span,
            }),
            Err(e) => {
                tracing::error!(error = %e, "decode task failed; requeueing its job");
                settlement.requeue().await;
            }
        }
    }
    out
}

/// What a decode task hands back.
struct Decoded {
    meta: Result<JobMeta, MalformedJob>,
    image: Result<RgbImage, String>,
    span: tracing::Span,
}

async fn decode_one(
    data: Vec<u8>,
    properties: BasicProperties,
    redelivered: bool,
    limiter: Arc<Semaphore>,
    limits: DecodeLimits,
) -> Decoded {
    let meta = JobMeta::from_properties(&properties);
    let span = match &meta {
        Ok(m) => tracing::info_span!(
            "job",
            otel.kind = "consumer",
            hash = %m.hash,
            name = %m.name,
            redelivered,
        ),
        Err(_) => tracing::info_span!("job", otel.kind = "consumer"),
    };
    if let Ok(m) = &meta
        && !m.trace_headers.is_empty()
    {
        let _ = span.set_parent(trace_context::extract(&m.trace_headers));
    }
    let decode_span = tracing::info_span!(parent: &span, "decode", bytes = data.len());
    let image = async {
        let _permit = limiter.acquire_owned().await;
        tokio::task::spawn_blocking(move || {
            decode_image_with(&data, &limits).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("decoder crashed: {e}")))
    }
    .instrument(decode_span)
    .await;
    Decoded { meta, image, span }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use facematch_core::{
        amqp::lapin::{
            BasicProperties,
            options::{BasicGetOptions, BasicPublishOptions},
        },
        testing::{Namespace, remove_namespace},
    };

    use super::{Decoded, Received, run_decoders};

    #[tokio::test]
    async fn a_decode_task_that_panics_puts_its_delivery_back_in_the_queue() {
        let ns = Namespace::new("decode-panic").await;
        let channel = ns.inspector.create_channel().await.expect("channel");
        let queue = ns.topology.scan_queue();
        channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                b"bytes",
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        let take = || async {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let got = channel
                    .basic_get(queue.as_str().into(), BasicGetOptions::default())
                    .await
                    .expect("get");
                if let Some(message) = got {
                    return message;
                }
                assert!(Instant::now() < deadline, "no message in the queue");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let received = Received {
            at: Instant::now(),
            delivery: take().await.delivery,
        };
        let decoded = run_decoders(
            vec![received],
            &super::Metrics::default(),
            |_, _, _| async {
                if true {
                    panic!("a bug in a decode task");
                }
                Decoded {
                    meta: Err(facematch_core::amqp::MalformedJob("unreachable".into())),
                    image: Err(String::new()),
                    span: tracing::Span::none(),
                }
            },
        )
        .await;
        assert!(decoded.is_empty(), "the failed job is not handed on");
        let again = take().await;
        assert_eq!(again.delivery.data, b"bytes");
        assert!(
            again.delivery.redelivered,
            "the same message, back in the queue"
        );
        remove_namespace(&ns.store, &ns.topology, &ns.inspector).await;
    }
}
