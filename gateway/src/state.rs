//! What every handler shares.

use std::sync::Arc;

use facematch_core::{amqp::Publisher, store::Store};
use tokio::sync::Semaphore;

use crate::fetch::{FetchConfig, Fetcher};

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

impl AppState {
    /// The state for a gateway that downloads URLs under `fetch` and handles at most
    /// `max_in_flight` scans at once.
    pub fn new(
        store: Store,
        publisher: Publisher,
        fetch: FetchConfig,
        max_body: usize,
        max_in_flight: usize,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            store,
            publisher,
            fetcher: Fetcher::new(fetch)?,
            max_body,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
        })
    }
}
