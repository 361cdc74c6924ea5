//! Matching a batch, in one place: per collection in the batch, that collection's index caught
//! up to the batch's own `facelog` entries, every new face compared with every older face of
//! another image of the same collection in one search, and the closest distance kept per image
//! pair. The processor calls it once per batch.

use std::collections::HashMap;

use facematch_core::{
    Collection, ImageHash,
    store::{LogId, Store},
};
use tokio::sync::watch;
use tracing::Instrument;

use super::{
    Metrics,
    engine::{Engine, Held},
    step::{StepError, retry_redis},
};
use crate::{Face, index::Query};

/// Entries read from `facelog` per round trip while catching up.
const CATCH_UP_PAGE: usize = 10_000;

/// One image's new faces and their log ids, in the same order.
#[derive(Debug, Clone, Copy)]
pub struct NewFaces<'a> {
    pub hash: ImageHash,
    pub collection: &'a Collection,
    pub ids: &'a [LogId],
    pub faces: &'a [Face],
}

/// The matching side of the worker: the engine's index and the store's `facelog`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub engine: Engine,
    /// Any collection's store (each collection's is derived from it).
    pub store: Store,
    /// Largest Euclidean distance that counts as the same person.
    pub threshold: f32,
    pub metrics: Metrics,
    pub shutdown: watch::Receiver<bool>,
}

impl Matcher {
    /// For each image, in order, the older images of the same person in its collection:
    /// `(image, smallest distance between their faces)`, sorted by image.
    pub async fn match_batch(
        &self,
        images: &[NewFaces<'_>],
        span: tracing::Span,
    ) -> Result<Vec<Vec<(ImageHash, f64)>>, StepError> {
        let mut best: Vec<HashMap<ImageHash, f64>> = vec![HashMap::new(); images.len()];
        let mut collections: Vec<&Collection> = images.iter().map(|i| i.collection).collect();
        collections.sort();
        collections.dedup();
        for collection in collections {
            let members: Vec<usize> = (0..images.len())
                .filter(|&i| images[i].collection == collection)
                .collect();
            let newest = members
                .iter()
                .filter_map(|&i| images[i].ids.last())
                .max()
                .copied();
            let held = self.held(collection).await?;
            if let Some(newest) = newest {
                self.catch_up(&held, Some(newest)).await?;
            }
            let mut queries = Vec::new();
            let mut owner = Vec::new();
            for &i in &members {
                let image = &images[i];
                for (face, id) in image.faces.iter().zip(image.ids) {
                    queries.push(Query {
                        hash: image.hash,
                        id: *id,
                        descriptor: face.descriptor,
                    });
                    owner.push(i);
                }
            }
            if queries.is_empty() {
                continue;
            }
            let hits = self
                .engine
                .search(collection.clone(), queries, self.threshold)
                .instrument(span.clone())
                .await
                .map_err(|e| StepError::from_engine(e, StepError::Index))?;
            for hit in hits {
                let closest = best[owner[hit.query]]
                    .entry(hit.other)
                    .or_insert(hit.distance);
                *closest = closest.min(hit.distance);
            }
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

    /// The collection in its current incarnation (its epoch, read from the store).
    pub async fn held(&self, collection: &Collection) -> Result<Held, StepError> {
        let store = self.store.in_collection(collection);
        let epoch = retry_redis(
            &self.metrics,
            &self.shutdown,
            "reading a collection's epoch",
            || store.collection_epoch(),
        )
        .await?;
        Ok(Held {
            collection: collection.clone(),
            epoch,
        })
    }

    /// Reads a collection's `facelog` into its index up to `until` (everything when `None`).
    pub async fn catch_up(&self, held: &Held, until: Option<LogId>) -> Result<(), StepError> {
        let store = self.store.in_collection(&held.collection);
        let mut stats = self
            .engine
            .stats(held.clone())
            .await
            .map_err(|e| StepError::from_engine(e, StepError::Index))?;
        loop {
            if until.is_some_and(|u| stats.last_id.is_some_and(|last| last >= u)) {
                return Ok(());
            }
            let page = retry_redis(&self.metrics, &self.shutdown, "reading facelog", || {
                store.read_facelog(stats.last_id, until, CATCH_UP_PAGE)
            })
            .await?;
            let done = page.entries < CATCH_UP_PAGE;
            stats = self
                .engine
                .extend(held.clone(), page)
                .await
                .map_err(|e| StepError::from_engine(e, StepError::Index))?;
            self.metrics.index(stats.total_faces, stats.total_bytes);
            if done {
                return Ok(());
            }
        }
    }
}
