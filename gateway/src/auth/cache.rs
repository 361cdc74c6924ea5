//! Key lookups kept for a moment: every request needs its key checked, and one Redis round trip
//! per request is the cost the cache saves. An entry lives [`super::KEY_CACHE_TTL`], so a
//! revocation reaches every gateway within it without any message between them.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use facematch_core::{
    Collection,
    store::{Store, StoreError},
};

use super::Principal;

/// Entries kept at most; past it the cache starts afresh (only a flood of made-up keys, which
/// the throttle slows, gets there).
const MAX_ENTRIES: usize = 10_000;

/// What a digest was found to be.
#[derive(Debug, Clone)]
pub(super) enum Cached {
    Key(Principal),
    Unknown,
}

#[derive(Debug, Clone)]
pub(super) struct KeyCache {
    ttl: Duration,
    entries: Arc<Mutex<HashMap<String, (Instant, Cached)>>>,
}

impl KeyCache {
    pub(super) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Arc::default(),
        }
    }

    /// The fresh entry for `digest`, if any.
    pub(super) fn get(&self, digest: &str) -> Option<Cached> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(digest)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, cached)| cached.clone())
    }

    /// Looks `digest` up in the store, notes the key's use, and caches the answer.
    pub(super) async fn load(&self, store: &Store, digest: &str) -> Result<Cached, StoreError> {
        let cached = match store.find_api_key(digest).await? {
            None => Cached::Unknown,
            Some(record) => {
                let epoch = if record.collection == Collection::default() {
                    None
                } else {
                    match store
                        .in_collection(&record.collection)
                        .collection_epoch()
                        .await?
                    {
                        Some(epoch) => Some(epoch),
                        // Its collection is being deleted: the key goes with it.
                        None => return Ok(self.put(digest, Cached::Unknown)),
                    }
                };
                // At most once per TTL per key and gateway; a failure here costs nothing.
                let (store, owned) = (store.clone(), digest.to_owned());
                tokio::spawn(async move {
                    if let Err(e) = store.touch_api_key(&owned).await {
                        tracing::debug!(error = %e, "could not record a key's last use");
                    }
                });
                Cached::Key(Principal {
                    key_id: Some(Arc::from(record.id.as_str())),
                    collection: record.collection,
                    scopes: record.scopes,
                    epoch,
                })
            }
        };
        Ok(self.put(digest, cached))
    }

    fn put(&self, digest: &str, cached: Cached) -> Cached {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(digest.to_owned(), (Instant::now(), cached.clone()));
        cached
    }

    pub(super) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
