//! Running a decoded batch to the end: inference on the engine, faces appended to `facelog`
//! once, the index caught up to the batch's own entries, matches searched and written both
//! ways, then ack. Redis failures are transient (retried in place with backoff, never acked);
//! undecodable images are permanent failures of their job alone. Each job's attempt is counted
//! in Redis just before inference (the workers' poison budget, see `plan`).

use std::{collections::HashMap, time::Duration};

use facematch_core::{
    ImageHash,
    amqp::lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions},
    store::{Appended, FaceBox, FaceRecord, ImageMeta, LogId, Store, StoreError},
};
use tokio::sync::watch;
use tracing::Instrument;

use super::{decode_stage::DecodedJob, engine::Engine, index::Query, metrics::Metrics};
use crate::Face;

/// Entries read from `facelog` per round trip while catching up.
const CATCH_UP_PAGE: usize = 10_000;
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);
/// Longest wait for the broker connection to take an ack, nack or reject.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared by every batch.
#[derive(Debug, Clone)]
pub struct Processor {
    pub store: Store,
    pub engine: Engine,
    pub threshold: f32,
    pub model: String,
    /// The descriptor crop, stored with every face.
    pub alignment: String,
    pub metrics: Metrics,
    pub shutdown: watch::Receiver<bool>,
    /// Starts of processing without finishing before a job is failed as poison.
    pub max_attempts: u32,
    /// Most canvas pixels in one batch (an image over it runs alone).
    pub batch_pixels: u64,
}

/// A Redis step gave up because the worker is shutting down.
#[derive(Debug)]
pub(super) struct Abandoned;

fn to_record(face: &Face) -> FaceRecord {
    let [x, y, width, height] = face.bbox;
    FaceRecord {
        score: face.score,
        bbox: FaceBox {
            x,
            y,
            width,
            height,
        },
        landmarks: face.landmarks.to_vec(),
        descriptor: face.descriptor.to_vec(),
    }
}

impl Processor {
    /// Retries a Redis step until it succeeds or the worker shuts down.
    pub(super) async fn retry<T, F, Fut>(&self, what: &str, mut step: F) -> Result<T, Abandoned>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut backoff = Duration::from_millis(100);
        loop {
            match step().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    self.metrics.redis_retry();
                    tracing::warn!(error = %e, ?backoff, "{what} failed; retrying");
                    if *self.shutdown.borrow() {
                        return Err(Abandoned);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
                }
            }
        }
    }

    /// Processes a batch to the end; every job is acked, rejected or left for redelivery.
    pub async fn process(&self, batch: Vec<DecodedJob>) {
        for job in &batch {
            self.metrics
                .queue_time(job.received.elapsed().as_secs_f64());
        }
        let mut ready = Vec::new();
        for job in batch {
            match (&job.meta, &job.image) {
                (Err(e), _) => {
                    tracing::error!(parent: &job.span, error = %e, "malformed message; dead-lettering");
                    self.metrics.job("malformed");
                    settle(
                        "reject",
                        job.delivery.reject(BasicRejectOptions { requeue: false }),
                    )
                    .await;
                }
                (Ok(meta), Err(reason)) => {
                    let hash = meta.hash;
                    let reason = format!("cannot decode the image: {reason}");
                    tracing::warn!(parent: &job.span, %hash, %reason, "job failed");
                    let span = job.span.clone();
                    let stored = self
                        .retry("marking a job failed", || {
                            self.store.fail_job(hash, &reason)
                        })
                        .instrument(tracing::info_span!(parent: &span, "store.fail_job"))
                        .await;
                    if stored.is_ok() {
                        self.metrics.job("failed");
                        ack(&job).await;
                    }
                }
                (Ok(_), Ok(_)) => ready.push(job),
            }
        }
        // Count the attempt of every job about to run; a redelivery of a finished job stops here.
        let mut started = Vec::with_capacity(ready.len());
        for job in ready {
            let Ok(meta) = &job.meta else { continue };
            let hash = meta.hash;
            match self
                .retry("counting an attempt", || self.store.begin_attempt(hash))
                .instrument(tracing::info_span!(parent: &job.span, "store.begin_attempt"))
                .await
            {
                Ok(Some(_)) => started.push(job),
                Ok(None) => {
                    tracing::info!(parent: &job.span, %hash, "job was already done (redelivery)");
                    self.metrics.job("duplicate");
                    ack(&job).await;
                }
                Err(Abandoned) => return,
            }
        }
        let mut ready = started;
        if ready.is_empty() {
            return;
        }

        let images: Vec<image::RgbImage> = ready
            .iter_mut()
            .filter_map(|j| j.image.as_mut().ok().map(std::mem::take))
            .collect();
        let sizes: Vec<(u32, u32)> = images.iter().map(|i| i.dimensions()).collect();
        let batch_span = tracing::info_span!("batch", batch_size = ready.len());
        for job in &ready {
            batch_span.follows_from(job.span.id());
        }
        let inferred = self
            .engine
            .infer(images)
            .instrument(batch_span.clone())
            .await;
        let (faces, timings) = match inferred {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "inference failed; requeueing the batch");
                self.requeue(&ready).await;
                return;
            }
        };
        self.metrics.inference(ready.len(), &timings);

        // Append every job's faces (once per image, whatever the deliveries).
        let mut appended = Vec::with_capacity(ready.len());
        for ((job, faces), (width, height)) in ready.iter().zip(&faces).zip(&sizes) {
            let Ok(meta) = &job.meta else { continue };
            let records: Vec<FaceRecord> = faces.iter().map(to_record).collect();
            let image_meta = ImageMeta {
                width: *width,
                height: *height,
                model: self.model.clone(),
                alignment: self.alignment.clone(),
            };
            let result = self
                .retry("storing faces", || {
                    self.store.append_faces(meta.hash, &records, &image_meta)
                })
                .instrument(tracing::info_span!(parent: &job.span, "store.append_faces", faces = records.len()))
                .await;
            let Ok(result) = result else { return };
            appended.push(result);
        }

        // Catch the index up to the newest entry of this batch, then search.
        let newest = appended
            .iter()
            .filter_map(|a| match a {
                Appended::Ids(ids) => ids.last().copied(),
                Appended::AlreadyDone => None,
            })
            .max();
        if let Some(newest) = newest
            && self.catch_up(Some(newest)).await.is_err()
        {
            return;
        }
        let mut queries = Vec::new();
        let mut owner = Vec::new();
        for (j, (job, result)) in ready.iter().zip(&appended).enumerate() {
            let (Ok(meta), Appended::Ids(ids)) = (&job.meta, result) else {
                continue;
            };
            for (face, id) in faces[j].iter().zip(ids) {
                queries.push(Query {
                    hash: meta.hash,
                    id: *id,
                    descriptor: face.descriptor,
                });
                owner.push(j);
            }
        }
        let hits = match self
            .engine
            .search(queries, self.threshold)
            .instrument(batch_span)
            .await
        {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "index search failed; requeueing the batch");
                self.requeue(&ready).await;
                return;
            }
        };
        let mut best: Vec<HashMap<ImageHash, f64>> = vec![HashMap::new(); ready.len()];
        for hit in hits {
            let entry = best[owner[hit.query]]
                .entry(hit.other)
                .or_insert(hit.distance);
            *entry = entry.min(hit.distance);
        }

        for ((job, result), matches) in ready.iter().zip(&appended).zip(best) {
            let Ok(meta) = &job.meta else { continue };
            if matches!(result, Appended::Ids(_)) {
                let mut pairs: Vec<(ImageHash, f64)> = matches.into_iter().collect();
                pairs.sort_by_key(|p| p.0);
                let stored = self
                    .retry("storing matches", || self.store.finish_job(meta.hash, &pairs))
                    .instrument(tracing::info_span!(parent: &job.span, "store.finish_job", matches = pairs.len()))
                    .await;
                if stored.is_err() {
                    return;
                }
                tracing::info!(parent: &job.span, hash = %meta.hash, faces = faces_of(result), matches = pairs.len(), "job done");
                self.metrics.job("done");
            } else {
                tracing::info!(parent: &job.span, hash = %meta.hash, "job was already done (redelivery)");
                self.metrics.job("duplicate");
            }
            ack(job).await;
        }
    }

    /// Hands a batch back to the broker after a failure that is not the input's fault as far as
    /// we know; each job's counted attempt fails it as poison once it keeps failing.
    async fn requeue(&self, batch: &[DecodedJob]) {
        let nacks = batch.iter().map(|job| {
            self.metrics.job("requeued");
            settle(
                "requeue",
                job.delivery.nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                }),
            )
        });
        futures_util::future::join_all(nacks).await;
    }

    /// Reads `facelog` into the index up to `until` (everything when `None`).
    pub async fn catch_up(&self, until: Option<LogId>) -> Result<(), ()> {
        loop {
            let stats = self.engine.extend(Vec::new()).await.map_err(|_| ())?;
            if until.is_some_and(|u| stats.last_id.is_some_and(|last| last >= u)) {
                return Ok(());
            }
            let page = self
                .retry("reading facelog", || {
                    self.store.read_facelog(stats.last_id, until, CATCH_UP_PAGE)
                })
                .await
                .map_err(|_| ())?;
            let done = page.len() < CATCH_UP_PAGE;
            let stats = self.engine.extend(page).await.map_err(|e| {
                tracing::error!(error = %e, "cannot extend the face index");
            })?;
            self.metrics.index(stats.faces, stats.bytes);
            if done {
                return Ok(());
            }
        }
    }
}

fn faces_of(result: &Appended) -> usize {
    match result {
        Appended::Ids(ids) => ids.len(),
        Appended::AlreadyDone => 0,
    }
}

async fn ack(job: &DecodedJob) {
    settle("ack", job.delivery.ack(BasicAckOptions::default())).await;
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
