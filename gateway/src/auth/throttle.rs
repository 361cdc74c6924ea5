//! The brake on guessing keys: a client address whose requests failed authentication
//! [`MAX_FAILURES`] times (`FACEMATCH_AUTH_FAILURES_PER_MINUTE`) within [`WINDOW`] gets 429 until
//! that window ends. Kept per gateway process (each replica brakes on its own); behind a proxy,
//! the address is the proxy's.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

/// Failed authentications allowed per address and window, by default.
pub const MAX_FAILURES: u32 = 20;
/// The window over which failures are counted.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; past it, stale ones are dropped.
const MAX_ADDRESSES: usize = 100_000;

#[derive(Debug, Clone)]
pub(super) struct Throttle {
    failures: Arc<Mutex<HashMap<IpAddr, (Instant, u32)>>>,
    /// Failures allowed per window (0: no brake).
    max: u32,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(MAX_FAILURES)
    }
}

impl Throttle {
    pub(super) fn new(max: u32) -> Self {
        Self {
            failures: Arc::default(),
            max,
        }
    }

    /// Whether `ip` has used up its failures in the current window.
    pub(super) fn is_blocked(&self, ip: IpAddr) -> bool {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures
            .get(&ip)
            .is_some_and(|(since, n)| self.max > 0 && since.elapsed() < WINDOW && *n >= self.max)
    }

    /// Counts one failed authentication from `ip`.
    pub(super) fn failed(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() >= MAX_ADDRESSES {
            failures.retain(|_, (since, _)| since.elapsed() < WINDOW);
        }
        let entry = failures.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }

    /// Seconds to send as `Retry-After`.
    pub(super) fn retry_after(&self) -> u32 {
        WINDOW.as_secs() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_failures_and_others_are_not() {
        let throttle = Throttle::default();
        let (a, b): (IpAddr, IpAddr) = (
            "192.0.2.1".parse().expect("ip"),
            "192.0.2.2".parse().expect("ip"),
        );
        for _ in 0..MAX_FAILURES - 1 {
            throttle.failed(a);
        }
        assert!(!throttle.is_blocked(a));
        throttle.failed(a);
        assert!(throttle.is_blocked(a));
        assert!(!throttle.is_blocked(b));
    }
}
