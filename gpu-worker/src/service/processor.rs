//! Running a decoded batch to the end: inference on the engine, faces appended to `facelog`
//! once, the index caught up to the batch's own entries, matches searched and written both
//! ways, then ack. Each job's attempt is counted in Redis just before inference (the workers'
//! poison budget, see `plan`). Undecodable images are permanent failures of their job alone;
//! how the other failures are handled is in `step`. Whatever happens, no delivery leaves
//! [`Processor::process`] unsettled.

use facematch_core::{
    ImageHash,
    amqp::JobMeta,
    store::{Appended, Begun, FaceBox, FaceRecord, ImageMeta, Store},
};
use tokio::sync::watch;
use tracing::Instrument;

use super::{
    decode_stage::DecodedJob,
    engine::Engine,
    matcher::{Matcher, NewFaces},
    metrics::Metrics,
    step::{FailureStreak, StepError, retry_redis},
    thumbnails::{Thumbnails, thumbnails_of},
};
use crate::Face;

/// Shared by every batch.
#[derive(Debug, Clone)]
pub struct Processor {
    /// The `default` collection's store; each job uses its own collection's
    /// ([`Processor::store_for`]).
    pub store: Store,
    /// Runs the networks.
    pub engine: Engine,
    /// Matches a batch's faces with the stored ones.
    pub matcher: Matcher,
    pub model: String,
    /// The descriptor crop, stored with every face.
    pub alignment: String,
    pub metrics: Metrics,
    pub shutdown: watch::Receiver<bool>,
    /// Starts of processing without finishing before a job is failed as poison.
    pub max_attempts: u32,
    /// Most canvas pixels in one batch (an image over it runs alone).
    pub batch_pixels: u64,
    /// Failed batches in a row (the pause before requeueing).
    pub failures: FailureStreak,
    /// Whether a thumbnail of each face is stored with it.
    pub thumbnails: Thumbnails,
}

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

/// A job whose attempt was counted: its position in the batch, its image, and the store of its
/// collection (its writes guarded by the job's epoch).
#[derive(Debug, Clone)]
struct Started {
    at: usize,
    hash: ImageHash,
    store: Store,
}

impl Processor {
    /// The store a job reads and writes: its collection's, guarded by its epoch.
    pub fn store_for(&self, meta: &JobMeta) -> Store {
        self.store.for_job(&meta.collection, meta.epoch.as_deref())
    }

    /// Processes a batch to the end: every job is acked, rejected or requeued.
    pub async fn process(&self, mut batch: Vec<DecodedJob>) {
        for job in &batch {
            self.metrics
                .queue_time(job.received.elapsed().as_secs_f64());
        }
        // Boxed: the whole run is one deep future, and every caller's future embeds it.
        match Box::pin(self.run(&mut batch)).await {
            Ok(()) => self.failures.reset(),
            Err(StepError::ShuttingDown) => {}
            Err(StepError::EngineGone) => {
                tracing::error!(
                    "the engine thread has stopped; requeueing the batch, the worker stops"
                );
            }
            Err(e) => {
                let pause = self.failures.next_pause();
                tracing::error!(error = %e, ?pause, "batch failed; requeueing its jobs after a pause");
                self.pause(pause).await;
            }
        }
        // Whatever stopped the batch: a delivery left unsettled would hold a prefetch slot
        // until the connection drops.
        let requeues = batch
            .iter_mut()
            .filter(|job| job.settlement.is_pending())
            .map(|job| {
                self.metrics.job("requeued");
                job.settlement.requeue()
            });
        futures_util::future::join_all(requeues).await;
    }

    async fn run(&self, batch: &mut [DecodedJob]) -> Result<(), StepError> {
        self.settle_unreadable(batch).await?;
        let started = self.begin_attempts(batch).await?;
        if started.is_empty() {
            return Ok(());
        }
        let outcome = self.run_started(batch, &started).await;
        if let Err(e) = &outcome
            && !e.blames_the_images()
            && !matches!(e, StepError::ShuttingDown)
        {
            for s in &started {
                let one = [s.hash];
                self.retry("forgiving attempts", || s.store.forgive_attempts(&one))
                    .await?;
            }
        }
        outcome
    }

    /// Rejects malformed messages and fails jobs whose image cannot be decoded.
    async fn settle_unreadable(&self, batch: &mut [DecodedJob]) -> Result<(), StepError> {
        for job in batch.iter_mut() {
            match (&job.meta, &job.image) {
                (Err(e), _) => {
                    tracing::error!(parent: &job.span, error = %e, "malformed message; dead-lettering");
                    self.metrics.job("malformed");
                    job.settlement.reject().await;
                }
                (Ok(meta), Err(reason)) => {
                    let hash = meta.hash;
                    let store = self.store_for(meta);
                    let reason = format!("cannot decode the image: {reason}");
                    tracing::warn!(parent: &job.span, %hash, %reason, "job failed");
                    let marked = self
                        .retry("marking a job failed", || store.fail_job(hash, &reason))
                        .instrument(tracing::info_span!(parent: &job.span, "store.fail_job"))
                        .await;
                    match marked.map_err(|e| e.of_job(hash)) {
                        Ok(()) => {
                            self.metrics.job("failed");
                            job.settlement.ack().await;
                        }
                        Err(StepError::JobData(_, e)) => {
                            tracing::error!(parent: &job.span, %hash, error = %e, "the job's stored data is damaged; dead-lettering it");
                            self.metrics.job("damaged");
                            job.settlement.reject().await;
                        }
                        Err(e) => return Err(e),
                    }
                }
                (Ok(_), Ok(_)) => {}
            }
        }
        Ok(())
    }

    /// Counts the attempt of every job about to run and returns them; a redelivery of a
    /// finished job is acked here.
    async fn begin_attempts(&self, batch: &mut [DecodedJob]) -> Result<Vec<Started>, StepError> {
        let mut started = Vec::with_capacity(batch.len());
        for (i, job) in batch.iter_mut().enumerate() {
            let (Ok(meta), Ok(_)) = (&job.meta, &job.image) else {
                continue;
            };
            let hash = meta.hash;
            let store = self.store_for(meta);
            let begun = self
                .retry("counting an attempt", || store.begin_attempt(hash))
                .instrument(tracing::info_span!(parent: &job.span, "store.begin_attempt"))
                .await;
            let begun = match begun.map_err(|e| e.of_job(hash)) {
                Ok(begun) => begun,
                // Its attempts cannot even be counted: no run could ever end it.
                Err(StepError::JobData(_, e)) => {
                    tracing::error!(parent: &job.span, %hash, error = %e, "the job's stored data is damaged; dead-lettering it");
                    self.metrics.job("damaged");
                    job.settlement.reject().await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match begun {
                Begun::Started(_) => started.push(Started { at: i, hash, store }),
                Begun::AlreadyDone => {
                    tracing::info!(parent: &job.span, %hash, "job was already done (redelivery)");
                    self.metrics.job("duplicate");
                    job.settlement.ack().await;
                }
                Begun::Gone => self.drop_gone(job, hash).await,
            }
        }
        Ok(started)
    }

    /// Inference, faces stored, matches searched and stored, ack; for the `started` jobs.
    async fn run_started(
        &self,
        batch: &mut [DecodedJob],
        started: &[Started],
    ) -> Result<(), StepError> {
        let images: Vec<image::RgbImage> = started
            .iter()
            .filter_map(|s| batch[s.at].image.as_mut().ok().map(std::mem::take))
            .collect();
        let sizes: Vec<(u32, u32)> = images.iter().map(|i| i.dimensions()).collect();
        let batch_span = tracing::info_span!("batch", batch_size = started.len());
        for s in started {
            batch_span.follows_from(batch[s.at].span.id());
        }
        let inferred = self
            .engine
            .infer(images)
            .instrument(batch_span.clone())
            .await
            .map_err(|e| StepError::from_engine(e, StepError::Inference))?;
        let (mut faces, timings) = (inferred.faces, inferred.timings);
        // A descriptor that is not finite would damage the stored log for every worker.
        for (s, image_faces) in started.iter().zip(&mut faces) {
            let before = image_faces.len();
            image_faces.retain(|f| f.descriptor.iter().all(|v| v.is_finite()));
            if image_faces.len() < before {
                tracing::error!(parent: &batch[s.at].span, dropped = before - image_faces.len(), "faces with a descriptor that is not finite were dropped");
            }
        }
        self.metrics.inference(started.len(), &timings);
        let thumbnails = self.thumbnails_of(inferred.images, &faces).await;

        // Append every job's faces (once per image, whatever the deliveries).
        let mut appended = Vec::with_capacity(started.len());
        for (((s, faces), thumbnails), (width, height)) in
            started.iter().zip(&faces).zip(&thumbnails).zip(&sizes)
        {
            let records: Vec<FaceRecord> = faces.iter().map(to_record).collect();
            let image_meta = ImageMeta {
                width: *width,
                height: *height,
                model: self.model.clone(),
                alignment: self.alignment.clone(),
            };
            let result = self
                .retry("storing faces", || {
                    s.store
                        .append_faces(s.hash, &records, thumbnails, &image_meta)
                })
                .instrument(tracing::info_span!(parent: &batch[s.at].span, "store.append_faces", faces = records.len()))
                .await
                .map_err(|e| e.of_job(s.hash))?;
            appended.push(result);
        }

        // Match the faces of the jobs that were not done before.
        let new_faces: Vec<NewFaces> = started
            .iter()
            .zip(&appended)
            .zip(&faces)
            .filter_map(|((s, result), faces)| match result {
                Appended::Ids(ids) => Some(NewFaces {
                    hash: s.hash,
                    collection: s.store.collection(),
                    ids,
                    faces,
                }),
                Appended::AlreadyDone | Appended::Gone => None,
            })
            .collect();
        let mut matched = self
            .matcher
            .match_batch(&new_faces, batch_span)
            .await?
            .into_iter();

        for (s, result) in started.iter().zip(&appended) {
            let job = &mut batch[s.at];
            let hash = s.hash;
            match result {
                Appended::Ids(ids) => {
                    // One answer per image with new faces, in order: a missing one is a bug in
                    // the matcher, never "no matches".
                    let pairs = matched.next().ok_or(StepError::MatchCount)?;
                    let alive = self
                        .retry("storing matches", || s.store.finish_job(hash, &pairs))
                        .instrument(tracing::info_span!(parent: &job.span, "store.finish_job", matches = pairs.len()))
                        .await
                        .map_err(|e| e.of_job(hash))?;
                    if alive {
                        tracing::info!(parent: &job.span, %hash, faces = ids.len(), matches = pairs.len(), "job done");
                        self.metrics.job("done");
                    } else {
                        self.drop_gone(job, hash).await;
                        continue;
                    }
                }
                Appended::AlreadyDone => {
                    tracing::info!(parent: &job.span, %hash, "job was already done (redelivery)");
                    self.metrics.job("duplicate");
                }
                Appended::Gone => {
                    self.drop_gone(job, hash).await;
                    continue;
                }
            }
            job.settlement.ack().await;
        }
        Ok(())
    }

    /// Each image's face thumbnails, cut on a blocking thread; none for an image when they are
    /// off, or when cutting them failed (the faces matter more than their pictures).
    async fn thumbnails_of(
        &self,
        images: Vec<image::RgbImage>,
        faces: &[Vec<crate::Face>],
    ) -> Vec<Vec<Vec<u8>>> {
        let none = || vec![Vec::new(); faces.len()];
        if self.thumbnails == Thumbnails::Off {
            return none();
        }
        // Only the boxes go to the blocking thread: the faces stay here for what follows.
        let boxes: Vec<Vec<[f32; 4]>> = faces
            .iter()
            .map(|image| image.iter().map(|f| f.bbox).collect())
            .collect();
        match tokio::task::spawn_blocking(move || thumbnails_of(&images, &boxes)).await {
            Ok(thumbnails) => thumbnails,
            Err(e) => {
                tracing::error!(error = %e, "cutting face thumbnails failed; the faces are stored without");
                none()
            }
        }
    }

    /// Acks a job whose image was erased, or whose collection was deleted, since it was
    /// queued: nothing of it is stored.
    async fn drop_gone(&self, job: &mut DecodedJob, hash: ImageHash) {
        tracing::info!(parent: &job.span, %hash, "the job's image was erased or its collection deleted; dropping the job");
        self.metrics.job("gone");
        job.settlement.ack().await;
    }
}

impl Processor {
    /// [`retry_redis`] with the processor's metrics and shutdown signal.
    pub(super) async fn retry<T, F, Fut>(&self, what: &str, step: F) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, facematch_core::store::StoreError>>,
    {
        retry_redis(&self.metrics, &self.shutdown, what, step).await
    }

    /// Sleeps for `pause`, or less if the worker starts shutting down.
    pub(super) async fn pause(&self, pause: std::time::Duration) {
        let mut shutdown = self.shutdown.clone();
        let _ = tokio::time::timeout(pause, shutdown.wait_for(|stop| *stop)).await;
    }
}
