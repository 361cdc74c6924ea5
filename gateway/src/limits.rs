//! What one client may hold of the gateway: how long it may take to send headers and a body,
//! how slowly it may send, and how many bytes all requests together may keep in memory.
//!
//! The byte budget is what bounds memory: every request body and every download grows a
//! [`Reservation`] before it grows its buffer (by the buffer's capacity, not just its length),
//! and a request that would pass the budget is answered 429 instead of being buffered. Peak
//! memory is therefore about the process's baseline plus `max_buffered`, plus one copy of
//! each body being handed to the broker.

use std::{sync::Arc, time::Duration};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slowness and memory limits of the body readers (the header timeout is the server's,
/// [`crate::server::ServerConfig`]).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest time to receive a whole request body.
    pub body_timeout: Duration,
    /// Slowest average body rate accepted once [`RATE_GRACE`] has passed, in bytes/s.
    pub min_body_rate: usize,
    /// Bytes of bodies and downloads held at once, over all requests.
    pub max_buffered: usize,
}

/// The start of a body during which no minimum rate applies (connection set-up, slow start).
pub const RATE_GRACE: Duration = Duration::from_secs(5);

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_timeout: Duration::from_secs(120),
            min_body_rate: 16 << 10,
            max_buffered: 64 << 20,
        }
    }
}

impl Limits {
    /// When a body that began at `start` and has delivered `received` bytes so far is too
    /// slow or too long, if no more bytes arrive.
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

/// The bytes every request together may hold in memory (cheap to clone).
#[derive(Debug, Clone)]
pub struct Budget {
    bytes: Arc<Semaphore>,
}

impl Budget {
    /// A budget of `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            bytes: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// A reservation holding nothing yet.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            budget: self.bytes.clone(),
            permit: None,
            held: 0,
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
}

impl Reservation {
    /// Bytes held.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Grows the reservation to at least `total` bytes; `false` (and nothing taken) when the
    /// budget has not that much free.
    pub fn grow_to(&mut self, total: usize) -> bool {
        if total <= self.held {
            return true;
        }
        let Ok(more) = u32::try_from(total - self.held) else {
            return false;
        };
        let Ok(permit) = self.budget.clone().try_acquire_many_owned(more) else {
            return false;
        };
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        crate::metrics::buffered((total - self.held) as f64);
        self.held = total;
        true
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held > 0 {
            crate::metrics::buffered(-(self.held as f64));
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
        if !reservation.grow_to(start) {
            return Err(Overflow::Budget);
        }
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
            if !self.reservation.grow_to(capacity) {
                return Err(Overflow::Budget);
            }
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
        let mut a = budget.reservation();
        assert!(a.grow_to(60));
        let mut b = budget.reservation();
        assert!(!b.grow_to(50), "only 40 left");
        assert_eq!(b.held(), 0);
        assert!(b.grow_to(40));
        drop(a);
        assert_eq!(budget.available(), 60);
        drop(b);
        assert_eq!(budget.available(), 100);
    }

    #[test]
    fn a_buffer_reserves_its_capacity_and_stops_at_its_limit() {
        let budget = Budget::new(1000);
        let mut buf = BoundedBuffer::new(budget.reservation(), 300, None).expect("empty");
        buf.push(&[1; 100]).expect("fits");
        assert!(budget.available() <= 900);
        buf.push(&[2; 150]).expect("fits");
        assert_eq!(buf.push(&[3; 100]), Err(Overflow::TooLarge));
        let (data, reservation) = buf.into_parts();
        assert_eq!(data.len(), 250);
        assert!(reservation.held() >= data.capacity());
        assert_eq!(
            BoundedBuffer::new(budget.reservation(), 300, Some(301)).err(),
            Some(Overflow::TooLarge)
        );
        assert_eq!(
            BoundedBuffer::new(budget.reservation(), 5000, Some(2000)).err(),
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
