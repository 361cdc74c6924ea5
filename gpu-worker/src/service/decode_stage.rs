//! Turning deliveries into decoded jobs: read the job's properties, open its span under the
//! trace parent it carries, and decode the image on the blocking pool.

use std::{sync::Arc, time::Instant};

use facematch_core::amqp::{JobMeta, MalformedJob, lapin::message::Delivery, trace_context};
use image::RgbImage;
use tokio::sync::Semaphore;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{consumer::Received, settle::Settlement};
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

/// Decodes a batch, at most `limiter`'s permits at once, each image within `limits`.
pub async fn decode_batch(
    deliveries: Vec<Received>,
    limiter: Arc<Semaphore>,
    limits: DecodeLimits,
) -> Vec<DecodedJob> {
    let tasks: Vec<_> = deliveries
        .into_iter()
        .map(|received| {
            let limiter = limiter.clone();
            tokio::spawn(async move { decode_one(received, limiter, limits).await })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(job) => out.push(job),
            Err(e) => tracing::error!(error = %e, "decode task failed"),
        }
    }
    out
}

async fn decode_one(
    received: Received,
    limiter: Arc<Semaphore>,
    limits: DecodeLimits,
) -> DecodedJob {
    let Received { at, delivery } = received;
    let Delivery {
        data,
        acker,
        properties,
        redelivered,
        ..
    } = delivery;
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
    DecodedJob {
        settlement: Settlement::new(acker),
        received: at,
        meta,
        image,
        span,
    }
}
