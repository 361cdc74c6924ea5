//! The store's link to Redis: one multiplexed connection that every operation shares, made by
//! the pool and kept while it works. A pooled connection is checked with a `PING` each time
//! it is taken, which doubled the round trips of every operation; a multiplexed connection
//! already carries any number of concurrent commands, and none of ours holds a connection's
//! state (no `WATCH`, `MULTI` or blocking reads). After a transient error the connection is
//! forgotten and the next operation makes a new one.

use std::sync::Arc;

use deadpool_redis::{Connection, Pool, redis::aio::MultiplexedConnection};
use tokio::sync::Mutex;

use super::StoreError;

/// The pool that makes connections, and the connection in use. The lock is held while a
/// connection is made, so concurrent first uses make one, not one each.
#[derive(Clone)]
pub(super) struct Link {
    pool: Pool,
    current: Arc<Mutex<Option<MultiplexedConnection>>>,
}

impl Link {
    pub(super) fn new(pool: Pool) -> Self {
        Self {
            pool,
            current: Arc::default(),
        }
    }

    /// The shared connection, made first if there is none.
    pub(super) async fn get(&self) -> Result<MultiplexedConnection, StoreError> {
        let mut current = self.current.lock().await;
        if let Some(conn) = current.as_ref() {
            return Ok(conn.clone());
        }
        let made = self
            .pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        // Taken out of the pool for good: the pool only makes connections now.
        let conn = Connection::take(made);
        *current = Some(conn.clone());
        Ok(conn)
    }

    /// Drops the shared connection (after an error on it); the next [`Self::get`] makes one.
    pub(super) async fn forget(&self) {
        self.current.lock().await.take();
    }
}
