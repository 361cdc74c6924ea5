//! Queueing an image exactly once: claim the hash in Redis, publish with confirm, then mark it
//! `queued`. A hash already queued or processed is not published again.

use facematch_core::{
    ImageHash,
    amqp::{JobMeta, PublishError, Source},
    store::{Claim, ImageState},
};

use crate::{error::ApiError, state::AppState};

/// Makes sure the job for `hash` is durably queued (or already known); then returns.
pub async fn enqueue(
    state: &AppState,
    hash: ImageHash,
    name: &str,
    source: Source,
    mime: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    let claim = state.store.claim_image(hash).await?;
    let must_publish = match claim {
        Claim::New => true,
        // Another request's publish is in flight and may still fail: publish too, so this
        // answer never depends on it (the worker is idempotent).
        Claim::Existing(ImageState::Pending) => true,
        Claim::Existing(_) => false,
    };
    if !must_publish {
        tracing::debug!(%hash, ?claim, "image already known; not queued again");
        return Ok(());
    }
    let job = JobMeta {
        hash,
        name: name.to_owned(),
        source,
        content_type: mime.to_owned(),
        trace_headers: Vec::new(),
    };
    match state.publisher.publish_job(&job, body).await {
        Ok(()) => {
            crate::metrics::publish("confirmed");
            state.store.confirm_queued(hash).await?;
            Ok(())
        }
        Err(e) => {
            crate::metrics::publish("failed");
            tracing::warn!(%hash, error = %e, "publish failed");
            if claim == Claim::New {
                // Best effort: a later request may claim and publish again.
                let _ = state.store.release_claim(hash).await;
            }
            Err(publish_error(e))
        }
    }
}

fn publish_error(e: PublishError) -> ApiError {
    ApiError::unavailable(format!("{e}; the image was not queued, retry shortly"))
}
