//! What every handler shares.

use std::{sync::Arc, time::Duration};

use facematch_core::{amqp::Publisher, store::Store};
use tokio::sync::Semaphore;

use crate::{
    auth::{Auth, AuthMode},
    fetch::{FetchConfig, Fetcher},
    limits::{Budget, Limits},
    waiters::{WaiterLimits, Waiters},
};

/// How long an image may stay `queued` before a re-upload publishes it again.
pub const DEFAULT_REQUEUE_AFTER: Duration = Duration::from_secs(15 * 60);

/// The workers' default match threshold (`FACEMATCH_THRESHOLD`).
pub const DEFAULT_MATCH_THRESHOLD: f32 = 0.6;

/// Shared by every request (cheap to clone).
#[derive(Debug, Clone)]
pub struct AppState {
    /// The `default` collection's store; a request uses its caller's collection
    /// ([`crate::auth::Caller::store`]).
    pub store: Store,
    /// Keys and scopes.
    pub auth: Auth,
    pub publisher: Publisher,
    pub fetcher: Fetcher,
    /// Largest image accepted, upload or download, in bytes.
    pub max_body: usize,
    /// Largest canvas accepted (width × height from the header), the workers' budget.
    pub max_image_pixels: u64,
    /// Scans being handled at once (taken before the body is read); none free gives 429.
    pub in_flight: Arc<Semaphore>,
    /// Timeouts, minimum body rate and memory budget.
    pub limits: Limits,
    /// The memory budget itself, shared by every body and download.
    pub budget: Budget,
    /// How long an image may stay `queued` before a re-upload publishes it again.
    pub requeue_after: Duration,
    /// The workers' match threshold: which face pairs are shown behind a match.
    pub match_threshold: f32,
    /// Long-polls waiting for images to settle.
    pub waiters: Waiters,
}

impl AppState {
    /// The state for a gateway that downloads URLs under `fetch` and handles at most
    /// `max_in_flight` scans at once, with the default [`Limits`] and re-queue bound, and keys
    /// required (see [`Self::with_auth`]).
    pub fn new(
        store: Store,
        publisher: Publisher,
        fetch: FetchConfig,
        max_body: usize,
        max_in_flight: usize,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            waiters: Waiters::new(store.clone(), WaiterLimits::default()),
            store,
            auth: Auth::new(AuthMode::Required, None),
            publisher,
            fetcher: Fetcher::new(fetch)?,
            max_body,
            max_image_pixels: facematch_core::image_limits::MAX_IMAGE_PIXELS,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            budget: Limits::default().budget(),
            limits: Limits::default(),
            requeue_after: DEFAULT_REQUEUE_AFTER,
            match_threshold: DEFAULT_MATCH_THRESHOLD,
        })
    }

    /// The same state under other limits (a fresh memory budget of `limits.max_buffered`).
    pub fn with_limits(self, limits: Limits) -> Self {
        Self {
            budget: limits.budget(),
            limits,
            ..self
        }
    }

    /// The same state with another image pixel budget.
    pub fn with_max_image_pixels(self, max_image_pixels: u64) -> Self {
        Self {
            max_image_pixels,
            ..self
        }
    }

    /// The same state with other authentication.
    pub fn with_auth(self, auth: Auth) -> Self {
        Self { auth, ..self }
    }

    /// The same state with another match threshold.
    pub fn with_match_threshold(self, match_threshold: f32) -> Self {
        Self {
            match_threshold,
            ..self
        }
    }

    /// The same state with another long-poll pool.
    pub fn with_waiter_limits(self, limits: WaiterLimits) -> Self {
        Self {
            waiters: Waiters::new(self.store.clone(), limits),
            ..self
        }
    }

    /// The same state with another re-queue bound.
    pub fn with_requeue_after(self, requeue_after: Duration) -> Self {
        Self {
            requeue_after,
            ..self
        }
    }
}
