//! Redis: the key schema, the stored documents, and typed operations on them.
//!
//! Every operation runs under a timeout so a dead Redis is an error, not a hang.

mod alignment;
mod api_keys;
mod attempts;
mod collections;
mod erase;
mod face_views;
mod gateway_ops;
mod keys;
mod link;
mod model;
mod pending;
mod schema;
mod settled;
mod worker_ops;

use std::{future::Future, time::Duration};

use deadpool_redis::{
    Config, PoolConfig, Runtime, Timeouts,
    redis::{RedisError, aio::MultiplexedConnection},
};
use tracing::Instrument;

use crate::Collection;

pub use self::{
    api_keys::ApiKeyRecord,
    attempts::{Begun, DEAD_LETTERED},
    collections::CollectionErased,
    erase::Erased,
    face_views::{FacePair, face_pairs},
    gateway_ops::{Claim, NAMES_PER_MATCH},
    keys::Keys,
    model::{FaceBox, FaceRecord, ImageState, ImageStatus, MatchDetail},
    schema::SchemaOutcome,
    settled::{parse_settled, settled_message},
    worker_ops::{Appended, DESCRIPTOR_LEN, FacelogEntry, FacelogPage, ImageMeta, LogId},
};
pub use deadpool_redis::redis;

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis is unavailable: {0}")]
    Unavailable(String),
    #[error("redis command failed: {0}")]
    Command(#[from] RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether Redis may answer if asked again: it was out of reach, too slow, or dropped the
    /// connection, as opposed to refusing the command or holding data we cannot read.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable(_) | Self::Timeout(_) => true,
            Self::Command(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
            }
            Self::Corrupt(_) => false,
        }
    }
}

/// The Redis link plus the key schema: the one door to the stored state.
#[derive(Clone)]
pub struct Store {
    link: link::Link,
    /// Where Redis is, for the connections the link does not make (pub/sub).
    url: std::sync::Arc<str>,
    keys: Keys,
    timeout: Duration,
    /// What a worker's writes require of the collection (see [`Store::for_job`]).
    guard: EpochGuard,
}

/// What a job's writes check, inside each write, before changing anything: that its
/// collection still exists in the incarnation the job was queued for. A job of a deleted
/// collection then writes nothing, whenever it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EpochGuard {
    /// No check: the `default` collection, which is never deleted.
    None,
    /// The collection's epoch must exist (a job that did not carry one).
    Exists,
    /// The collection's epoch must be this one.
    Equals(String),
}

impl EpochGuard {
    /// The script argument: `''` (no check), `'*'` (must exist) or the epoch.
    pub(crate) fn arg(&self) -> &str {
        match self {
            Self::None => "",
            Self::Exists => "*",
            Self::Equals(epoch) => epoch,
        }
    }
}

/// Lua `alive(epoch key, guard argument)`: whether a guarded write may go ahead.
pub(crate) const ALIVE_FN: &str = r#"
local function alive(epoch_key, expected)
  if expected == '' then return true end
  local epoch = redis.call('GET', epoch_key)
  if expected == '*' then return epoch ~= false end
  return epoch == expected
end
"#;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("keys", &self.keys).finish()
    }
}

impl Store {
    /// Opens the store (lazily: no connection is made until first use).
    pub fn open(url: &str, key_prefix: &str) -> Result<Self, StoreError> {
        let timeout = Duration::from_secs(3);
        let mut cfg = Config::from_url(url);
        // The pool only makes the one shared connection (see `link`), which is never
        // returned to it, so it is never recycled either.
        cfg.pool = Some(PoolConfig {
            max_size: 1,
            timeouts: Timeouts {
                wait: Some(timeout),
                create: Some(timeout),
                recycle: None,
            },
            ..PoolConfig::default()
        });
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self {
            link: link::Link::new(pool),
            url: url.into(),
            keys: Keys::new(key_prefix),
            timeout,
            guard: EpochGuard::None,
        })
    }

    /// The key schema.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The same store seen from another collection: every per-image operation then reads and
    /// writes that collection's keys only. [`Store::open`] gives the `default` collection.
    pub fn in_collection(&self, collection: &Collection) -> Self {
        Self {
            link: self.link.clone(),
            url: self.url.clone(),
            keys: self.keys.for_collection(collection),
            timeout: self.timeout,
            guard: EpochGuard::None,
        }
    }

    /// The store a worker uses for one job: the job's collection, with its writes guarded by
    /// the epoch the job carries ([`EpochGuard`]).
    pub fn for_job(&self, collection: &Collection, epoch: Option<&str>) -> Self {
        let guard = match epoch {
            Some(epoch) => EpochGuard::Equals(epoch.to_owned()),
            None if *collection == Collection::default() => EpochGuard::None,
            None => EpochGuard::Exists,
        };
        Self {
            guard,
            ..self.in_collection(collection)
        }
    }

    /// What this store's job writes check.
    pub fn guard(&self) -> &EpochGuard {
        &self.guard
    }

    /// The collection this store's per-image operations act in.
    pub fn collection(&self) -> &Collection {
        self.keys.collection()
    }

    /// The connection every operation shares (see [`link`]).
    pub async fn conn(&self) -> Result<MultiplexedConnection, StoreError> {
        self.link.get().await
    }

    /// Runs one Redis round trip under the store's timeout, in its own span (`redis.<name>`).
    pub async fn timed<T>(
        &self,
        name: &'static str,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let span = tracing::info_span!("redis", otel.name = name, otel.kind = "client");
        let result = tokio::time::timeout(self.timeout, op)
            .instrument(span)
            .await
            .map_err(|_| StoreError::Timeout(self.timeout))
            .and_then(|r| r);
        if let Err(e) = &result
            && e.is_transient()
        {
            self.link.forget();
        }
        result
    }

    /// `PING`: used by readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.timed("redis.ping", async {
            let mut conn = self.conn().await?;
            let _: String = redis::cmd("PING").query_async(&mut conn).await?;
            Ok(())
        })
        .await
    }
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use deadpool_redis::redis::ErrorKind;

    #[test]
    fn a_dropped_connection_is_transient_and_a_refused_command_is_not() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(StoreError::Command(RedisError::from(reset)).is_transient());
        assert!(StoreError::Unavailable("pool".into()).is_transient());
        assert!(StoreError::Timeout(Duration::from_secs(3)).is_transient());
        let type_error = RedisError::from((ErrorKind::UnexpectedReturnType, "not a string"));
        assert!(!StoreError::Command(type_error).is_transient());
        assert!(!StoreError::Corrupt("facelog entry".into()).is_transient());
    }
}
