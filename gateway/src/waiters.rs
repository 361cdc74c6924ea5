//! Long-polls (`GET /images/{hash}?wait=`): a bounded pool of waiters, woken when their image
//! settles, sharing their reads of it.
//!
//! - **Bounded.** At most `total` long-polls wait at once, and at most `per_address` from one
//!   client address; beyond that the poll is answered 429 at once (and its connection closed),
//!   so waiting clients can never hold the connection slots every other request needs.
//! - **Woken, not polling.** Workers announce each image that settles on a Redis channel
//!   ([`facematch_core::store::Store::subscribe_settled`]); one subscription per gateway wakes
//!   the waiters of that image. An announcement lost while the subscription reconnects costs
//!   latency only: waiters also look again every [`RECHECK`], and at their deadline.
//! - **Shared reads.** The waiters of one image share one read of it per wake-up (at most one
//!   per [`FRESH`] otherwise), so Redis sees a few reads per image being waited on, however many
//!   clients wait on it.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, OnceLock, PoisonError, Weak},
    time::Duration,
};

use facematch_core::{
    Collection, ImageHash,
    store::{ImageStatus, Store, StoreError, parse_settled},
};
use futures_util::StreamExt;
use tokio::{sync::watch, time::Instant};

/// How often a waiter looks again without an announcement.
pub const RECHECK: Duration = Duration::from_secs(5);
/// How long one read of an image serves the other waiters of the same wake-up.
pub const FRESH: Duration = Duration::from_secs(1);
/// Pause before subscribing again after the subscription failed.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// How many long-polls may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaiterLimits {
    /// At once, in all (`FACEMATCH_MAX_WAITERS`).
    pub total: usize,
    /// At once from one client address (`FACEMATCH_MAX_WAITERS_PER_ADDRESS`; 0: no cap, for a
    /// gateway behind a proxy).
    pub per_address: usize,
}

impl Default for WaiterLimits {
    fn default() -> Self {
        Self {
            total: 256,
            per_address: 32,
        }
    }
}

/// The pool is full, in all or for the caller's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    #[error("the gateway's long-poll pool is full")]
    Total,
    #[error("this address has as many long-polls waiting as it may")]
    Address,
}

type ImageKey = (Collection, ImageHash);

/// The long-poll pool of one gateway (cheap to clone).
#[derive(Clone)]
pub struct Waiters {
    inner: Arc<Inner>,
}

struct Inner {
    limits: WaiterLimits,
    store: Store,
    registry: Mutex<Registry>,
    /// Set once the subscriber task is started (on the first long-poll).
    subscribed: OnceLock<()>,
}

#[derive(Default)]
struct Registry {
    images: HashMap<ImageKey, (Arc<Entry>, usize)>,
    addresses: HashMap<IpAddr, usize>,
    total: usize,
}

/// What the waiters of one image share.
struct Entry {
    /// Bumped at each announcement (and each resubscription).
    wakes: watch::Sender<u64>,
    /// The last read: at which wake-up, when, and what it found.
    latest: tokio::sync::Mutex<Option<(u64, Instant, Option<ImageStatus>)>>,
}

impl std::fmt::Debug for Waiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiters")
            .field("limits", &self.inner.limits)
            .field("waiting", &self.waiting())
            .finish()
    }
}

impl Waiters {
    /// A pool under `limits`, whose subscription uses `store`'s Redis.
    pub fn new(store: Store, limits: WaiterLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                store,
                registry: Mutex::default(),
                subscribed: OnceLock::new(),
            }),
        }
    }

    /// Long-polls waiting now.
    pub fn waiting(&self) -> usize {
        self.inner.registry().total
    }

    /// Takes a place in the pool to wait on `hash` of `collection`.
    pub fn enter(
        &self,
        address: Option<IpAddr>,
        collection: &Collection,
        hash: ImageHash,
    ) -> Result<Waiting, Full> {
        self.inner.subscribed.get_or_init(|| {
            tokio::spawn(subscribe(Arc::downgrade(&self.inner)));
        });
        let limits = self.inner.limits;
        let mut registry = self.inner.registry();
        if registry.total >= limits.total {
            return Err(Full::Total);
        }
        if let Some(address) = address
            && limits.per_address > 0
        {
            let count = registry.addresses.entry(address).or_default();
            if *count >= limits.per_address {
                return Err(Full::Address);
            }
            *count += 1;
        }
        registry.total += 1;
        let key = (collection.clone(), hash);
        let (entry, count) = registry.images.entry(key.clone()).or_insert_with(|| {
            let (wakes, _) = watch::channel(0);
            let entry = Entry {
                wakes,
                latest: tokio::sync::Mutex::new(None),
            };
            (Arc::new(entry), 0)
        });
        *count += 1;
        let entry = entry.clone();
        let wakes = entry.wakes.subscribe();
        Ok(Waiting {
            pool: self.inner.clone(),
            key,
            address,
            entry,
            wakes,
        })
    }
}

impl Inner {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the waiters of one image.
    fn wake(&self, key: &ImageKey) {
        if let Some((entry, _)) = self.registry().images.get(key) {
            entry.wakes.send_modify(|n| *n += 1);
        }
    }

    /// Wakes every waiter (announcements may have been missed).
    fn wake_all(&self) {
        for (entry, _) in self.registry().images.values() {
            entry.wakes.send_modify(|n| *n += 1);
        }
    }
}

/// One long-poll's place in the pool, given back when dropped.
pub struct Waiting {
    pool: Arc<Inner>,
    key: ImageKey,
    address: Option<IpAddr>,
    entry: Arc<Entry>,
    wakes: watch::Receiver<u64>,
}

impl Waiting {
    /// The image's status now, read once for all the waiters of this wake-up: a read made
    /// since the last announcement and less than [`FRESH`] ago is shared.
    pub async fn status(&mut self) -> Result<Option<ImageStatus>, StoreError> {
        let wake = *self.wakes.borrow_and_update();
        let mut latest = self.entry.latest.lock().await;
        if let Some((at_wake, read_at, status)) = latest.as_ref()
            && *at_wake == wake
            && read_at.elapsed() < FRESH
        {
            return Ok(status.clone());
        }
        let store = self.pool.store.in_collection(&self.key.0);
        let status = store.image_status(self.key.1).await?;
        *latest = Some((wake, Instant::now(), status.clone()));
        Ok(status)
    }

    /// Waits for an announcement about the image, [`RECHECK`] or `deadline`, whichever
    /// comes first.
    pub async fn next_wake(&mut self, deadline: Instant) {
        let until = deadline.min(Instant::now() + RECHECK);
        let _ = tokio::time::timeout_at(until, self.wakes.changed()).await;
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut registry = self.pool.registry();
        registry.total -= 1;
        if let Some(address) = self.address
            && self.pool.limits.per_address > 0
            && let Some(count) = registry.addresses.get_mut(&address)
        {
            *count -= 1;
            if *count == 0 {
                registry.addresses.remove(&address);
            }
        }
        if let Some((_, count)) = registry.images.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                registry.images.remove(&self.key);
            }
        }
    }
}

/// The gateway's one subscription to settled images, kept until the pool is dropped.
async fn subscribe(pool: Weak<Inner>) {
    loop {
        let Some(store) = pool.upgrade().map(|p| p.store.clone()) else {
            return;
        };
        match store.subscribe_settled().await {
            Ok(pubsub) => {
                // Anything announced before this subscription was missed: look again.
                match pool.upgrade() {
                    Some(p) => p.wake_all(),
                    None => return,
                }
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let Some(p) = pool.upgrade() else { return };
                    let payload: String = message.get_payload().unwrap_or_default();
                    if let Some(key) = parse_settled(&payload) {
                        p.wake(&key);
                    }
                }
                tracing::warn!("the subscription to settled images ended; subscribing again");
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to settled images; long-polls look again every 5 s");
            }
        }
        tokio::time::sleep(RESUBSCRIBE_AFTER).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(total: usize, per_address: usize) -> Waiters {
        let store = Store::open("redis://127.0.0.1:6379", "waiters-unit:").expect("store");
        Waiters::new(store, WaiterLimits { total, per_address })
    }

    #[tokio::test]
    async fn the_pool_is_bounded_in_all_and_per_address() {
        let waiters = pool(3, 2);
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        let c = Collection::default();
        let h = ImageHash::of(b"x");
        let first = waiters.enter(Some(a), &c, h).expect("1st");
        let _second = waiters.enter(Some(a), &c, h).expect("2nd");
        assert_eq!(waiters.enter(Some(a), &c, h).err(), Some(Full::Address));
        let _third = waiters.enter(Some(b), &c, h).expect("other address");
        assert_eq!(waiters.enter(Some(b), &c, h).err(), Some(Full::Total));
        drop(first);
        assert_eq!(waiters.waiting(), 2);
        waiters
            .enter(Some(a), &c, h)
            .expect("a place was given back");
    }

    #[tokio::test]
    async fn no_cap_per_address_when_it_is_zero() {
        let waiters = pool(3, 0);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let (c, h) = (Collection::default(), ImageHash::of(b"x"));
        let held: Vec<Waiting> = (0..3)
            .map(|_| waiters.enter(Some(a), &c, h).expect("within the total"))
            .collect();
        assert_eq!(waiters.enter(Some(a), &c, h).err(), Some(Full::Total));
        drop(held);
        assert_eq!(waiters.waiting(), 0);
        assert!(waiters.inner.registry().addresses.is_empty());
    }

    #[tokio::test]
    async fn an_announcement_wakes_only_its_image() {
        let waiters = pool(10, 10);
        let c = Collection::default();
        let (h1, h2) = (ImageHash::of(b"1"), ImageHash::of(b"2"));
        let mut one = waiters.enter(None, &c, h1).expect("enter");
        let mut two = waiters.enter(None, &c, h2).expect("enter");
        // A new subscription wakes everyone once (announcements before it were missed).
        tokio::time::sleep(Duration::from_millis(500)).await;
        one.wakes.borrow_and_update();
        two.wakes.borrow_and_update();
        waiters.inner.wake(&(c.clone(), h1));
        let far = Instant::now() + Duration::from_secs(60);
        tokio::time::timeout(Duration::from_secs(1), one.next_wake(far))
            .await
            .expect("woken");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), two.next_wake(far))
                .await
                .is_err(),
            "the other image's waiter sleeps on"
        );
        drop((one, two));
        assert!(waiters.inner.registry().images.is_empty());
    }
}
