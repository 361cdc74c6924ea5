//! What one client may hold of the gateway: how long it may take to send headers and a body,
//! how slowly it may send, and how many bytes all requests together may keep in memory.
//!
//! The byte budget is what bounds memory: every request body and every download grows a
//! [`Reservation`] before it grows its buffer (by the buffer's capacity, not just its length),
//! and a request that would pass the budget is answered 429 instead of being buffered. Peak
//! memory is therefore about the process's baseline plus `max_buffered`, plus one copy of
//! each body being handed to the broker. One client address may hold at most its share of
//! the budget (`max_buffered_per_address`), so a few uploads from one client cannot shut every
//! other client out.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slowness and memory limits of the body readers (the header timeout is the server's,
/// [`crate::server::ServerConfig`]).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest time to receive a whole request body.
    pub body_timeout: Duration,
    /// Slowest average body rate accepted once [`RATE_GRACE`] has passed, in bytes/s.
    pub min_body_rate: usize,
    /// Longest silence within a body: no byte for this long ends it with 408, whatever came
    /// before (a burst followed by silence passes an average rate).
    pub stall_timeout: Duration,
    /// Bytes of bodies and downloads held at once, over all requests.
    pub max_buffered: usize,
    /// Bytes of bodies and downloads held at once for one client address (0: no cap).
    pub max_buffered_per_address: usize,
}

/// The start of a body during which no minimum rate applies (connection set-up, slow start).
pub const RATE_GRACE: Duration = Duration::from_secs(5);

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_timeout: Duration::from_secs(120),
            min_body_rate: 16 << 10,
            stall_timeout: Duration::from_secs(10),
            max_buffered: 64 << 20,
            max_buffered_per_address: 32 << 20,
        }
    }
}

impl Limits {
    /// When a body that began at `start` and has delivered `received` bytes so far is too
    /// slow or too long, if no more bytes arrive (its stall deadline aside).
    pub fn body_deadline(
        &self,
        start: tokio::time::Instant,
        received: usize,
    ) -> tokio::time::Instant {
        let total = start + self.body_timeout;
        if self.min_body_rate == 0 {
            return total;
        }
        let earned = Duration::from_secs_f64(received as f64 / self.min_body_rate as f64);
        total.min(start + RATE_GRACE + earned)
    }
}

impl Limits {
    /// A fresh memory budget of these limits.
    pub fn budget(&self) -> Budget {
        Budget::with_share(self.max_buffered, self.max_buffered_per_address)
    }
}

/// The bytes every request together may hold in memory (cheap to clone).
#[derive(Debug, Clone)]
pub struct Budget {
    bytes: Arc<Semaphore>,
    shares: Arc<Shares>,
}

/// What each client address holds of a [`Budget`], under a cap.
#[derive(Debug, Default)]
struct Shares {
    /// 0: no cap.
    cap: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl Shares {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Budget {
    /// A budget of `max` bytes, with no cap per address.
    pub fn new(max: usize) -> Self {
        Self::with_share(max, 0)
    }

    /// A budget of `max` bytes of which one address may hold `per_address` (0: no cap).
    pub fn with_share(max: usize, per_address: usize) -> Self {
        Self {
            bytes: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
            shares: Arc::new(Shares {
                cap: per_address,
                held: Mutex::default(),
            }),
        }
    }

    /// A reservation holding nothing yet, for a client at `address` (counted against its
    /// share) or for none.
    pub fn reservation(&self, address: Option<IpAddr>) -> Reservation {
        Reservation {
            budget: self.bytes.clone(),
            permit: None,
            held: 0,
            share: address.map(|a| (self.shares.clone(), a)),
        }
    }

    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }
}

/// Bytes one request holds of the [`Budget`]; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
    held: usize,
    /// The client address whose share this counts against.
    share: Option<(Arc<Shares>, IpAddr)>,
}

impl Reservation {
    /// Bytes held.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Grows the reservation to at least `total` bytes; an error (and nothing taken) when the
    /// budget, or the client's share of it, has not that much free.
    pub fn grow_to(&mut self, total: usize) -> Result<(), Overflow> {
        if total <= self.held {
            return Ok(());
        }
        let more = total - self.held;
        let Ok(more_permits) = u32::try_from(more) else {
            return Err(Overflow::Budget);
        };
        // The share is checked and taken under its lock, so two bodies of one client cannot
        // both pass it.
        let mut shares = self.share.as_ref().map(|(s, a)| (s.held(), s.cap, *a));
        if let Some((held, cap, address)) = &shares
            && *cap > 0
            && held.get(address).copied().unwrap_or(0) + more > *cap
        {
            return Err(Overflow::AddressShare);
        }
        let Ok(permit) = self.budget.clone().try_acquire_many_owned(more_permits) else {
            return Err(Overflow::Budget);
        };
        if let Some((held, _, address)) = &mut shares {
            *held.entry(*address).or_default() += more;
        }
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        crate::metrics::buffered(more as f64);
        self.held = total;
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held > 0 {
            crate::metrics::buffered(-(self.held as f64));
            if let Some((shares, address)) = &self.share {
                let mut held = shares.held();
                if let Some(n) = held.get_mut(address) {
                    *n = n.saturating_sub(self.held);
                    if *n == 0 {
                        held.remove(address);
                    }
                }
            }
        }
    }
}

/// Why a [`BoundedBuffer`] refused more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Over the per-request size limit.
    TooLarge,
    /// The memory budget of the whole gateway is spent.
    Budget,
    /// The client's address holds its share of the budget.
    AddressShare,
}

/// A growing byte buffer that never passes a size limit and whose capacity is always covered
/// by its reservation.
#[derive(Debug)]
pub struct BoundedBuffer {
    data: Vec<u8>,
    limit: usize,
    reservation: Reservation,
}

impl BoundedBuffer {
    /// A buffer of at most `limit` bytes; `expected` (a declared length) is reserved and
    /// allocated at once.
    pub fn new(
        mut reservation: Reservation,
        limit: usize,
        expected: Option<usize>,
    ) -> Result<Self, Overflow> {
        let start = match expected {
            Some(n) if n > limit => return Err(Overflow::TooLarge),
            Some(n) => n,
            None => 0,
        };
        reservation.grow_to(start)?;
        Ok(Self {
            data: Vec::with_capacity(start),
            limit,
            reservation,
        })
    }

    /// Appends `chunk`, reserving first whatever capacity the buffer must grow by.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), Overflow> {
        let needed = self.data.len() + chunk.len();
        if needed > self.limit {
            return Err(Overflow::TooLarge);
        }
        if needed > self.data.capacity() {
            let capacity = needed.max(self.data.capacity() * 2).min(self.limit);
            self.reservation.grow_to(capacity)?;
            self.data.reserve_exact(capacity - self.data.len());
        }
        self.data.extend_from_slice(chunk);
        Ok(())
    }

    /// Bytes held so far.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The bytes and the reservation that covers them (keep it while the bytes live).
    pub fn into_parts(self) -> (Vec<u8>, Reservation) {
        (self.data, self.reservation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let budget = Budget::new(100);
        let mut a = budget.reservation(None);
        assert_eq!(a.grow_to(60), Ok(()));
        let mut b = budget.reservation(None);
        assert_eq!(b.grow_to(50), Err(Overflow::Budget), "only 40 left");
        assert_eq!(b.held(), 0);
        assert_eq!(b.grow_to(40), Ok(()));
        drop(a);
        assert_eq!(budget.available(), 60);
        drop(b);
        assert_eq!(budget.available(), 100);
    }

    #[test]
    fn one_address_holds_at_most_its_share() {
        let budget = Budget::with_share(100, 50);
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        let mut first = budget.reservation(Some(a));
        assert_eq!(first.grow_to(30), Ok(()));
        let mut second = budget.reservation(Some(a));
        assert_eq!(second.grow_to(30), Err(Overflow::AddressShare));
        assert_eq!(second.grow_to(20), Ok(()), "up to the share");
        let mut other = budget.reservation(Some(b));
        assert_eq!(
            other.grow_to(50),
            Ok(()),
            "another address has its own share"
        );
        drop(first);
        let mut again = budget.reservation(Some(a));
        assert_eq!(again.grow_to(30), Ok(()), "the share came back");
        assert_eq!(budget.available(), 0);
    }

    #[test]
    fn a_buffer_reserves_its_capacity_and_stops_at_its_limit() {
        let budget = Budget::new(1000);
        let mut buf = BoundedBuffer::new(budget.reservation(None), 300, None).expect("empty");
        buf.push(&[1; 100]).expect("fits");
        assert!(budget.available() <= 900);
        buf.push(&[2; 150]).expect("fits");
        assert_eq!(buf.push(&[3; 100]), Err(Overflow::TooLarge));
        let (data, reservation) = buf.into_parts();
        assert_eq!(data.len(), 250);
        assert!(reservation.held() >= data.capacity());
        assert_eq!(
            BoundedBuffer::new(budget.reservation(None), 300, Some(301)).err(),
            Some(Overflow::TooLarge)
        );
        assert_eq!(
            BoundedBuffer::new(budget.reservation(None), 5000, Some(2000)).err(),
            Some(Overflow::Budget)
        );
    }

    #[test]
    fn slow_bodies_have_a_deadline() {
        let limits = Limits {
            body_timeout: Duration::from_secs(100),
            min_body_rate: 1000,
            ..Limits::default()
        };
        let start = tokio::time::Instant::now();
        assert_eq!(limits.body_deadline(start, 0), start + RATE_GRACE);
        assert_eq!(
            limits.body_deadline(start, 10_000),
            start + RATE_GRACE + Duration::from_secs(10)
        );
        assert_eq!(
            limits.body_deadline(start, 10_000_000),
            start + Duration::from_secs(100)
        );
    }
}
