//! The key layout's version, and the one-time move of a store made before collections into the
//! `default` collection.
//!
//! Before collections, an image's keys were `fm:image:{hash}`, `fm:facelog` and so on; now they
//! are `fm:{default}:image:{hash}`. The first gateway or worker of the new version to start
//! takes a lock, renames every old key (nothing is copied or lost: `RENAME` moves the value),
//! records `schema = 2`, and releases the lock; the others wait for `schema = 2`. Old processes
//! must be stopped first: one still writing old keys after the move would write where nobody
//! reads. Every start also makes sure the `default` collection exists.

use std::time::Duration;

use deadpool_redis::redis;

use super::{Store, StoreError, collections::glob_escape};
use crate::Collection;

/// The layout with collections.
const SCHEMA: &str = "2";
/// Key kinds of the layout before collections (each followed by `:` and an id, or alone).
const OLD_KINDS: [&str; 7] = [
    "file:", "url:", "files:", "urls:", "image:", "faces:", "matches:",
];
const OLD_SINGLE: [&str; 1] = ["facelog"];
/// How long a mover may hold the lock before another process takes over.
const LOCK_MS: u64 = 120_000;

/// What [`Store::ensure_schema`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaOutcome {
    /// The store already had the current layout.
    Current,
    /// This process moved `moved` old keys into `default`.
    Migrated { moved: u64 },
    /// Another process moved them; this one waited.
    WaitedForAnother,
}

impl Store {
    /// Makes sure the store has the current key layout (moving an old store into `default`
    /// once) and that the `default` collection exists. Waits up to `patience` for another
    /// process that is moving the keys.
    pub async fn ensure_schema(&self, patience: Duration) -> Result<SchemaOutcome, StoreError> {
        // Boxed: a deep future that every process's start-up future would otherwise embed.
        let outcome = Box::pin(self.migrate_once(patience)).await?;
        self.create_collection(&Collection::default()).await?;
        Ok(outcome)
    }

    async fn schema(&self) -> Result<Option<String>, StoreError> {
        self.timed("redis.schema", async {
            let mut conn = self.conn().await?;
            Ok(redis::cmd("GET")
                .arg(self.keys().schema())
                .query_async(&mut conn)
                .await?)
        })
        .await
    }

    async fn migrate_once(&self, patience: Duration) -> Result<SchemaOutcome, StoreError> {
        if self.schema().await?.as_deref() == Some(SCHEMA) {
            return Ok(SchemaOutcome::Current);
        }
        let token = format!("{:016x}", rand::random::<u64>());
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let locked: Option<String> = self
                .timed("redis.schema_lock", async {
                    let mut conn = self.conn().await?;
                    Ok(redis::cmd("SET")
                        .arg(self.keys().schema_lock())
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(LOCK_MS)
                        .query_async(&mut conn)
                        .await?)
                })
                .await?;
            if locked.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            if self.schema().await?.as_deref() == Some(SCHEMA) {
                return Ok(SchemaOutcome::WaitedForAnother);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Unavailable(
                    "another process is moving the store into the default collection; \
                     still waiting for it"
                        .into(),
                ));
            }
        }
        let moved = self.move_old_keys().await?;
        self.timed("redis.schema_done", async {
            let mut conn = self.conn().await?;
            let _: () = redis::pipe()
                .set(self.keys().schema(), SCHEMA)
                .del(self.keys().schema_lock())
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
        .await?;
        if moved > 0 {
            tracing::info!(
                moved,
                prefix = self.keys().prefix(),
                "moved a store made before collections into the default collection"
            );
        }
        Ok(SchemaOutcome::Migrated { moved })
    }

    /// Renames every key of the old layout to its place in `default`.
    async fn move_old_keys(&self) -> Result<u64, StoreError> {
        let prefix = self.keys().prefix().to_owned();
        let default = self.in_collection(&Collection::default());
        let pattern = format!("{}*", glob_escape(&prefix));
        let mut cursor = 0u64;
        let mut moved = 0;
        loop {
            let (next, keys) = self.scan(cursor, &pattern, 1000).await?;
            let mut pipe = redis::pipe();
            let mut renames = 0;
            for key in &keys {
                let rest = &key[prefix.len()..];
                let old = OLD_KINDS.iter().any(|kind| rest.starts_with(kind))
                    || OLD_SINGLE.contains(&rest);
                if old {
                    pipe.cmd("RENAME")
                        .arg(key)
                        .arg(format!("{}{rest}", default.keys().scope()))
                        .ignore();
                    renames += 1;
                }
            }
            if renames > 0 {
                self.timed("redis.rename", async {
                    let mut conn = self.conn().await?;
                    let _: () = pipe.query_async(&mut conn).await?;
                    Ok(())
                })
                .await?;
                moved += renames;
            }
            if next == 0 {
                return Ok(moved);
            }
            cursor = next;
        }
    }
}
