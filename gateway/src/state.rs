//! What every handler shares.

use std::sync::Arc;

use facematch_core::{amqp::Publisher, store::Store};
use tokio::sync::Semaphore;

use crate::fetch::Fetcher;

/// Shared by every request (cheap to clone).
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub publisher: Publisher,
    pub fetcher: Fetcher,
    /// Largest image accepted, upload or download, in bytes.
    pub max_body: usize,
    /// Scans being handled at once; a request finding none free gets 429.
    pub in_flight: Arc<Semaphore>,
}
