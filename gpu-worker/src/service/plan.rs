//! Shaping a collected batch before it is decoded.
//!
//! - **Poison**: a job whose processing already started `max_attempts` times without finishing
//!   (each time the worker crashed, or inference failed, while it ran) is marked failed
//!   (`dead-lettered: …`) and rejected to `facematch.dead`.
//! - **Suspects** (at least one such attempt) run alone, so a job that crashes the worker only
//!   ever blames itself, never the innocents that shared its batch.
//! - The others share batches whose canvases add up to at most `batch_pixels`, so the
//!   decoded pixels a worker holds are bounded whatever the images declare.

use std::panic::{AssertUnwindSafe, catch_unwind};

use facematch_core::{ImageHash, amqp::JobMeta, store::Store};

use super::{consumer::Received, processor::Processor, settle::Settlement, step::StepError};
use crate::decode::canvas_size;

impl Processor {
    /// Splits `batch` into the batches to run, in order; poison jobs are settled here.
    pub async fn plan(&self, batch: Vec<Received>) -> Vec<Vec<Received>> {
        let metas: Vec<Option<JobMeta>> = batch
            .iter()
            .map(|r| JobMeta::from_properties(&r.delivery.properties).ok())
            .collect();
        let hashes: Vec<Option<ImageHash>> =
            metas.iter().map(|m| m.as_ref().map(|m| m.hash)).collect();
        // One round trip for the batch, each job read in its own collection.
        let stores: Vec<Option<Store>> = metas
            .iter()
            .map(|m| m.as_ref().map(|m| self.store_for(m)))
            .collect();
        let known: Vec<(&Store, ImageHash)> = stores
            .iter()
            .zip(&hashes)
            .filter_map(|(store, hash)| Some((store.as_ref()?, (*hash)?)))
            .collect();
        // Shutting down with Redis away: no counts, the batch is abandoned later anyway. A
        // refused read (a damaged record) counts none: counting the attempt refuses the job.
        let counts = self
            .retry("reading attempts", || self.store.attempts_of(&known))
            .await
            .unwrap_or_else(|_| vec![0; known.len()]);
        let mut counts = counts.into_iter();
        let attempts: Vec<u32> = hashes
            .iter()
            .map(|h| h.map_or(0, |_| counts.next().unwrap_or(0)))
            .collect();
        let Some((batch, pixels)) = canvas_pixels(batch).await else {
            return Vec::new();
        };

        let mut planned = Vec::new();
        let mut shared = Vec::new();
        let mut shared_pixels = 0u64;
        for ((((received, hash), meta), tried), pixels) in batch
            .into_iter()
            .zip(hashes)
            .zip(&metas)
            .zip(attempts)
            .zip(pixels)
        {
            if let Some(meta) = meta
                && tried >= self.max_attempts
            {
                self.fail_poison(received, meta, tried).await;
                continue;
            }
            if tried > 0 {
                tracing::info!(hash = %hash_or_none(hash), attempts = tried, "running a job alone: its processing started before without finishing");
                planned.push(vec![received]);
                continue;
            }
            if !shared.is_empty() && shared_pixels + pixels > self.batch_pixels {
                planned.push(std::mem::take(&mut shared));
                shared_pixels = 0;
            }
            shared_pixels += pixels;
            shared.push(received);
        }
        if !shared.is_empty() {
            planned.push(shared);
        }
        planned
    }

    async fn fail_poison(&self, received: Received, meta: &JobMeta, tried: u32) {
        let hash = meta.hash;
        let store = self.store_for(meta);
        let reason = format!(
            "processing started {tried} times without finishing (the worker crashed or failed \
             each time); poison message"
        );
        tracing::error!(%hash, attempts = tried, "poison job: marking it failed and dead-lettering it");
        let marked = self
            .retry("marking a poison job failed", || {
                store.mark_dead_lettered(hash, &reason)
            })
            .await;
        let mut settlement = Settlement::new(received.delivery.acker, self.metrics.clone());
        // Marked, or its record refuses to be (damaged): either way to the dead-letter queue.
        let damaged = matches!(&marked, Err(StepError::Store(e)) if !e.is_transient());
        if marked.is_ok() || damaged {
            self.metrics.job("poison");
            settlement.reject().await;
        } else {
            // Back to the queue: the next worker fails it.
            self.metrics.job("requeued");
            settlement.requeue().await;
        }
    }
}

fn hash_or_none(hash: Option<ImageHash>) -> String {
    hash.map_or_else(|| "-".into(), |h| h.to_string())
}

/// Each delivery's canvas in pixels, from its header (0 when unreadable: decoding fails it
/// alone). Runs on the blocking pool; `None` only if the runtime is shutting down.
async fn canvas_pixels(batch: Vec<Received>) -> Option<(Vec<Received>, Vec<u64>)> {
    let counted = tokio::task::spawn_blocking(move || {
        let pixels = batch
            .iter()
            .map(|r| {
                catch_unwind(AssertUnwindSafe(|| canvas_size(&r.delivery.data)))
                    .ok()
                    .and_then(Result::ok)
                    .map_or(0, |(w, h)| u64::from(w) * u64::from(h))
            })
            .collect();
        (batch, pixels)
    })
    .await;
    match counted {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(error = %e, "reading image headers failed; the batch is redelivered");
            None
        }
    }
}
