//! The gateway's sweep of claims that never got queued ([`Store::sweep_pending`]): every few
//! seconds, over every collection, so a 503 during a Redis or broker fault never leaves a
//! `pending` record behind that only a re-upload could move. Every gateway sweeps; the
//! sweep is one script per collection, so two gateways sweeping at once settle each claim once.

use std::time::Duration;

use facematch_core::{Collection, store::Store};

/// Sweeps `store`'s collections for claims `pending` longer than `older_than`, forever.
pub async fn sweep_forever(store: Store, older_than: Duration) {
    let every = (older_than / 2).clamp(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = sweep_once(&store, older_than).await {
            tracing::warn!(error = %e, "cannot sweep pending claims; trying again later");
        }
    }
}

/// One sweep over every collection; the number of claims settled.
pub async fn sweep_once(
    store: &Store,
    older_than: Duration,
) -> Result<usize, facematch_core::store::StoreError> {
    let mut collections: Vec<Collection> = store
        .list_collections()
        .await?
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    if !collections.contains(&Collection::default()) {
        collections.push(Collection::default());
    }
    let mut settled = 0;
    for collection in collections {
        let swept = store
            .in_collection(&collection)
            .sweep_pending(older_than)
            .await?;
        if !swept.is_empty() {
            tracing::info!(%collection, images = swept.len(), "settled claims whose job was never confirmed");
        }
        settled += swept.len();
    }
    Ok(settled)
}
