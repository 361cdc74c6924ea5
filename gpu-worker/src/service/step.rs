//! How a step of a batch fails and is retried: a Redis that is out of reach or slow is waited
//! out in place with backoff until the worker shuts down; a refusal or damaged data, inference,
//! face-index and engine failures end the batch, which is then requeued after a pause that
//! grows while failures repeat. Whom a failure blames decides whether it costs the images an
//! attempt ([`StepError::blames_the_images`]).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use facematch_core::store::StoreError;
use tokio::sync::watch;

use super::{Metrics, engine::EngineError};

pub(super) const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Why a batch step stopped.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The worker is shutting down: what is unsettled goes back to the queue.
    #[error("the worker is shutting down")]
    ShuttingDown,
    /// The networks failed on this batch's images (which may be to blame).
    #[error("inference failed: {0}")]
    Inference(EngineError),
    /// The face index failed: not the images' fault.
    #[error(transparent)]
    Index(EngineError),
    /// The engine thread is gone (a panic, a device failure): the worker's fault, never the
    /// images'. The worker requeues what it holds and exits so it is restarted.
    #[error("the engine thread has stopped")]
    EngineGone,
    /// Redis answered with data the worker cannot read.
    #[error(transparent)]
    Store(StoreError),
    /// Redis refused one job's own keys (a wrong-typed key, a script error): that job's fault,
    /// so the run counts against its poison budget and it ends dead-lettered, never retried
    /// for ever.
    #[error("the stored data of image {0} is damaged: {1}")]
    JobData(facematch_core::ImageHash, StoreError),
    /// The matcher answered for fewer images than it was asked about (a bug of the worker):
    /// the batch is requeued rather than stored as "no matches".
    #[error("the matcher answered for fewer images than it was given")]
    MatchCount,
}

impl StepError {
    /// An engine answer's error: a stopped engine is [`Self::EngineGone`], whatever was asked.
    pub fn from_engine(e: EngineError, otherwise: fn(EngineError) -> Self) -> Self {
        match e {
            EngineError::Stopped => Self::EngineGone,
            e => otherwise(e),
        }
    }

    /// Whether the batch's images may be to blame: only then does the failed run use up their
    /// poison budget.
    pub fn blames_the_images(&self) -> bool {
        matches!(self, Self::Inference(_) | Self::JobData(..))
    }

    /// A refusal of one job's own keys as [`Self::JobData`]; anything else unchanged.
    pub fn of_job(self, hash: facematch_core::ImageHash) -> Self {
        match self {
            Self::Store(e) if !e.is_transient() => Self::JobData(hash, e),
            other => other,
        }
    }
}

/// Consecutive failed batches. The pause before a failed batch is requeued doubles with each,
/// so a worker whose engine or store keeps failing does not spin through redeliveries.
#[derive(Debug, Clone, Default)]
pub struct FailureStreak(Arc<AtomicU32>);

impl FailureStreak {
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// Counts a failure and returns how long to pause before requeueing.
    pub fn next_pause(&self) -> Duration {
        let failures = self.0.fetch_add(1, Ordering::Relaxed);
        FIRST_BACKOFF
            .saturating_mul(1 << failures.min(8))
            .min(MAX_RETRY_BACKOFF)
    }
}

/// Retries a Redis step while Redis is out of reach or too slow (until it answers or the
/// worker shuts down). An answer that is a refusal (a wrong-typed key, a script error) or data
/// the worker cannot read is not retried: asking again would get the same answer for ever.
pub(crate) async fn retry_redis<T, F, Fut>(
    metrics: &Metrics,
    shutdown: &watch::Receiver<bool>,
    what: &str,
    mut step: F,
) -> Result<T, StepError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut backoff = FIRST_BACKOFF;
    loop {
        match step().await {
            Ok(v) => return Ok(v),
            Err(e) if !e.is_transient() => {
                tracing::error!(error = %e, "{what} failed");
                return Err(StepError::Store(e));
            }
            Err(e) => {
                metrics.redis_retry();
                tracing::warn!(error = %e, ?backoff, "{what} failed; retrying");
                if *shutdown.borrow() {
                    return Err(StepError::ShuttingDown);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_up_to_the_cap_and_resets() {
        let streak = FailureStreak::default();
        let pauses: Vec<Duration> = (0..8).map(|_| streak.next_pause()).collect();
        assert_eq!(pauses[0], Duration::from_millis(100));
        assert_eq!(pauses[1], Duration::from_millis(200));
        assert_eq!(pauses[5], Duration::from_millis(3_200));
        assert_eq!(pauses[6], MAX_RETRY_BACKOFF);
        assert_eq!(pauses[7], MAX_RETRY_BACKOFF);
        streak.reset();
        assert_eq!(streak.next_pause(), Duration::from_millis(100));
    }

    #[test]
    fn only_inference_failures_blame_the_images() {
        assert!(StepError::Inference(EngineError::Stopped).blames_the_images());
        assert!(!StepError::Index(EngineError::Stopped).blames_the_images());
        assert!(!StepError::Store(StoreError::Corrupt("x".into())).blames_the_images());
        assert!(!StepError::ShuttingDown.blames_the_images());
        assert!(
            !StepError::from_engine(EngineError::Stopped, StepError::Inference).blames_the_images()
        );
    }
}
