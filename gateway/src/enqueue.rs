//! Queueing an image: claim the hash in Redis, publish with confirm, then mark it `queued`.
//!
//! A hash already queued or processed is not published again, except when its message may be
//! gone: a re-upload of an image still `pending` (a publish never confirmed), `queued` for
//! longer than `FACEMATCH_REQUEUE_AFTER`, or `failed` because the broker dead-lettered it, is
//! published again (the worker is idempotent, so a duplicate costs only a redundant decode).
//!
//! A publish that was sent but whose confirm never came is *not* reported as "not queued": the
//! broker may hold it. The claim is kept (`pending`, so a retry publishes again), the caller
//! records the names so a late delivery keeps them, and the answer is a 503 `may_be_queued`
//! with the hash and state.

use facematch_core::{
    ImageHash,
    amqp::{JobMeta, PublishError, Source},
    store::{Claim, ImageState, Store},
};

use crate::{error::ApiError, state::AppState};

/// One image to queue.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub hash: ImageHash,
    /// The filename or URL it arrived under (the message's `name` header).
    pub name: &'a str,
    pub source: Source,
    pub mime: &'a str,
    pub body: &'a [u8],
    /// The collection's epoch, carried by the message (see [`JobMeta::epoch`]).
    pub epoch: Option<&'a str>,
}

/// Why a job is not known to be queued.
#[derive(Debug)]
pub enum NotQueued {
    /// Certainly not queued (or never tried): answer this error.
    Refused(ApiError),
    /// Sent, not confirmed: it may be queued. Record the names, then answer 503.
    Unconfirmed(PublishError),
}

impl From<ApiError> for NotQueued {
    fn from(e: ApiError) -> Self {
        Self::Refused(e)
    }
}

impl From<facematch_core::store::StoreError> for NotQueued {
    fn from(e: facematch_core::store::StoreError) -> Self {
        Self::Refused(e.into())
    }
}

/// Claims the image in `store`'s collection; `Existing` means there is nothing to publish.
pub async fn claim(state: &AppState, store: &Store, hash: ImageHash) -> Result<Claim, ApiError> {
    let claim = store.claim_image(hash, state.requeue_after).await?;
    if let Claim::Requeue(had) = claim {
        tracing::info!(%hash, had = had.as_str(), "queueing a known image again; its message may be gone");
    }
    Ok(claim)
}

/// Makes sure an upload's job is durably queued (or already known) and its filename recorded;
/// then returns. Two Redis round trips for a new image (claim; queued + filename), one for a
/// known one (claim + filename).
pub async fn enqueue_upload(
    state: &AppState,
    store: &Store,
    job: Job<'_>,
) -> Result<(), NotQueued> {
    let claim = store
        .claim_upload(job.hash, state.requeue_after, job.name)
        .await?;
    if let Claim::Requeue(had) = claim {
        tracing::info!(hash = %job.hash, had = had.as_str(), "queueing a known image again; its message may be gone");
    }
    publish_claimed(state, store, claim, job).await
}

/// Publishes a claimed job when the claim says so, and settles the claim with the outcome: a
/// confirmed upload is marked queued with its filename recorded in the same round trip (a URL
/// is recorded by its caller, which must learn the hash it is bound to).
pub async fn publish_claimed(
    state: &AppState,
    store: &Store,
    claim: Claim,
    job: Job<'_>,
) -> Result<(), NotQueued> {
    let hash = job.hash;
    if !claim.must_publish() {
        tracing::debug!(%hash, ?claim, "image already known; not queued again");
        return Ok(());
    }
    let meta = JobMeta {
        hash,
        collection: store.collection().clone(),
        epoch: job.epoch.map(str::to_owned),
        name: job.name.to_owned(),
        source: job.source,
        content_type: job.mime.to_owned(),
        trace_headers: Vec::new(),
    };
    match state.publisher.publish_job(&meta, job.body).await {
        Ok(()) => {
            crate::metrics::publish("confirmed");
            match job.source {
                Source::Upload => store.confirm_upload(hash, job.name).await?,
                Source::Url => store.confirm_queued(hash).await?,
            }
            Ok(())
        }
        Err(e) if e.may_be_queued() => {
            crate::metrics::publish("unconfirmed");
            tracing::warn!(%hash, error = %e, "publish not confirmed; the job may be queued");
            Err(NotQueued::Unconfirmed(e))
        }
        Err(e) => {
            crate::metrics::publish("failed");
            tracing::warn!(%hash, error = %e, "publish failed");
            if claim == Claim::New {
                // Best effort: a later request may claim and publish again.
                let _ = store.release_claim(hash).await;
            }
            Err(NotQueued::Refused(ApiError::unavailable(format!(
                "{e}; the image was not queued, retry shortly"
            ))))
        }
    }
}

/// The 503 for an unconfirmed publish, naming the image's state as it is now.
pub async fn unconfirmed_answer(store: &Store, hash: ImageHash, why: PublishError) -> ApiError {
    let now = match store.image_status(hash).await {
        Ok(Some(status)) => status.state,
        _ => ImageState::Pending,
    };
    ApiError::may_be_queued(hash, now.as_str(), why)
}
