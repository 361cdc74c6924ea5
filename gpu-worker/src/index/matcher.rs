//! Matching a batch, in one place: the index caught up to the batch's own `facelog` entries,
//! every new face compared with every older face of another image in one search, and the
//! closest distance kept per image pair. The processor calls it once per batch.

use std::collections::HashMap;

use facematch_core::{
    ImageHash,
    store::{LogId, Store},
};
use tokio::sync::watch;
use tracing::Instrument;

use super::Query;
use crate::{
    Face,
    service::{
        Metrics,
        engine::Engine,
        step::{StepError, retry_redis},
    },
};

/// Entries read from `facelog` per round trip while catching up.
const CATCH_UP_PAGE: usize = 10_000;

/// One image's new faces and their log ids, in the same order.
#[derive(Debug, Clone, Copy)]
pub struct NewFaces<'a> {
    pub hash: ImageHash,
    pub ids: &'a [LogId],
    pub faces: &'a [Face],
}

/// The matching side of the worker: the engine's index and the store's `facelog`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub engine: Engine,
    pub store: Store,
    /// Largest Euclidean distance that counts as the same person.
    pub threshold: f32,
    pub metrics: Metrics,
    pub shutdown: watch::Receiver<bool>,
}

impl Matcher {
    /// For each image, in order, the older images of the same person: `(image, smallest
    /// distance between their faces)`, sorted by image.
    pub async fn match_batch(
        &self,
        images: &[NewFaces<'_>],
        span: tracing::Span,
    ) -> Result<Vec<Vec<(ImageHash, f64)>>, StepError> {
        if let Some(newest) = images.iter().filter_map(|i| i.ids.last()).max() {
            self.catch_up(Some(*newest)).await?;
        }
        let mut queries = Vec::new();
        let mut owner = Vec::new();
        for (i, image) in images.iter().enumerate() {
            for (face, id) in image.faces.iter().zip(image.ids) {
                queries.push(Query {
                    hash: image.hash,
                    id: *id,
                    descriptor: face.descriptor,
                });
                owner.push(i);
            }
        }
        let hits = self
            .engine
            .search(queries, self.threshold)
            .instrument(span)
            .await
            .map_err(StepError::Index)?;
        let mut best: Vec<HashMap<ImageHash, f64>> = vec![HashMap::new(); images.len()];
        for hit in hits {
            let closest = best[owner[hit.query]]
                .entry(hit.other)
                .or_insert(hit.distance);
            *closest = closest.min(hit.distance);
        }
        Ok(best
            .into_iter()
            .map(|pairs| {
                let mut pairs: Vec<(ImageHash, f64)> = pairs.into_iter().collect();
                pairs.sort_by_key(|p| p.0);
                pairs
            })
            .collect())
    }

    /// Reads `facelog` into the index up to `until` (everything when `None`).
    pub async fn catch_up(&self, until: Option<LogId>) -> Result<(), StepError> {
        let mut stats = self.engine.stats().await.map_err(StepError::Index)?;
        loop {
            if until.is_some_and(|u| stats.last_id.is_some_and(|last| last >= u)) {
                return Ok(());
            }
            let page = retry_redis(&self.metrics, &self.shutdown, "reading facelog", || {
                self.store.read_facelog(stats.last_id, until, CATCH_UP_PAGE)
            })
            .await?;
            let done = page.len() < CATCH_UP_PAGE;
            stats = self.engine.extend(page).await.map_err(StepError::Index)?;
            self.metrics.index(stats.faces, stats.bytes);
            if done {
                return Ok(());
            }
        }
    }
}
