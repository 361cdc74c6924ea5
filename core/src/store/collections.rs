//! The collections of a deployment (`{_}:collections`, name → creation time) and each one's
//! incarnation (`{name}:epoch`). Deleting a collection removes every key under its tag and its
//! epoch; a job or a worker's index made for an older epoch is refused or dropped.

use std::collections::HashMap;

use deadpool_redis::redis;

use super::{Store, StoreError, now_ms};
use crate::Collection;

/// What deleting a collection removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CollectionErased {
    /// Images (`image:` records) removed.
    pub images: u64,
    /// Redis keys removed, of every kind.
    pub redis_keys: u64,
    /// API keys revoked.
    pub api_keys: u64,
}

/// Keys removed per `UNLINK` while erasing a collection.
const ERASE_PAGE: usize = 500;

impl Store {
    /// Creates a collection with a fresh epoch; its creation time (Unix ms), or `None` when it
    /// exists already.
    pub async fn create_collection(
        &self,
        collection: &Collection,
    ) -> Result<Option<u64>, StoreError> {
        let scoped = self.in_collection(collection);
        let now = now_ms();
        self.timed("redis.create_collection", async {
            let mut conn = self.conn().await?;
            let created: bool = redis::cmd("HSETNX")
                .arg(self.keys().collections())
                .arg(collection.as_str())
                .arg(now)
                .query_async(&mut conn)
                .await?;
            if created {
                let epoch = format!("{:016x}", rand::random::<u64>());
                let _: () = redis::cmd("SET")
                    .arg(scoped.keys().epoch())
                    .arg(epoch)
                    .query_async(&mut conn)
                    .await?;
            }
            Ok(created.then_some(now))
        })
        .await
    }

    /// Whether a collection exists.
    pub async fn collection_exists(&self, collection: &Collection) -> Result<bool, StoreError> {
        self.timed("redis.collection_exists", async {
            let mut conn = self.conn().await?;
            Ok(redis::cmd("HEXISTS")
                .arg(self.keys().collections())
                .arg(collection.as_str())
                .query_async(&mut conn)
                .await?)
        })
        .await
    }

    /// Every collection with its creation time (Unix ms), by name.
    pub async fn list_collections(&self) -> Result<Vec<(Collection, u64)>, StoreError> {
        self.timed("redis.list_collections", async {
            let mut conn = self.conn().await?;
            let all: HashMap<String, u64> = redis::cmd("HGETALL")
                .arg(self.keys().collections())
                .query_async(&mut conn)
                .await?;
            let mut out: Vec<(Collection, u64)> = all
                .into_iter()
                .filter_map(|(name, at)| Some((name.parse().ok()?, at)))
                .collect();
            out.sort();
            Ok(out)
        })
        .await
    }

    /// This store's collection's epoch; `None` when the collection does not exist (deleted, or
    /// never created).
    pub async fn collection_epoch(&self) -> Result<Option<String>, StoreError> {
        self.timed("redis.collection_epoch", async {
            let mut conn = self.conn().await?;
            let epoch: Option<String> = redis::cmd("GET")
                .arg(self.keys().epoch())
                .query_async(&mut conn)
                .await?;
            Ok(epoch)
        })
        .await
    }

    /// Deletes a collection: its entry and epoch first (so its keys stop working and workers
    /// refuse its jobs), then its API keys, then every key under its tag. `None` when there is
    /// no such collection.
    pub async fn delete_collection(
        &self,
        collection: &Collection,
    ) -> Result<Option<CollectionErased>, StoreError> {
        let removed: i64 = self
            .timed("redis.delete_collection", async {
                let mut conn = self.conn().await?;
                Ok(redis::cmd("HDEL")
                    .arg(self.keys().collections())
                    .arg(collection.as_str())
                    .query_async(&mut conn)
                    .await?)
            })
            .await?;
        if removed == 0 {
            return Ok(None);
        }
        let scoped = self.in_collection(collection);
        let mut erased = CollectionErased::default();
        for key in self.list_api_keys().await? {
            if &key.collection == collection && self.revoke_api_key(&key.id).await?.is_some() {
                erased.api_keys += 1;
            }
        }
        let pattern = format!("{}*", glob_escape(scoped.keys().scope()));
        let image_prefix = scoped.keys().image_prefix();
        let mut cursor = 0u64;
        loop {
            let (next, keys) = self.scan(cursor, &pattern, ERASE_PAGE).await?;
            if !keys.is_empty() {
                erased.images +=
                    keys.iter().filter(|k| k.starts_with(&image_prefix)).count() as u64;
                let unlinked: u64 = self
                    .timed("redis.unlink", async {
                        let mut conn = self.conn().await?;
                        Ok(redis::cmd("UNLINK")
                            .arg(&keys)
                            .query_async(&mut conn)
                            .await?)
                    })
                    .await?;
                erased.redis_keys += unlinked;
            }
            if next == 0 {
                return Ok(Some(erased));
            }
            cursor = next;
        }
    }

    /// One `SCAN` step over the keys matching `pattern`: the next cursor (0 at the end) and a
    /// page of keys.
    pub(super) async fn scan(
        &self,
        cursor: u64,
        pattern: &str,
        count: usize,
    ) -> Result<(u64, Vec<String>), StoreError> {
        self.timed("redis.scan", async {
            let mut conn = self.conn().await?;
            Ok(redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(count)
                .query_async(&mut conn)
                .await?)
        })
        .await
    }
}

/// `s` with Redis glob characters escaped, for a `SCAN MATCH` prefix.
pub(super) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
