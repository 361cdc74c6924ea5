//! Liveness of the worker's broker link. A link that is cut fails fast, but one that stays open
//! and carries nothing (a stalled proxy, a hung broker) would leave the worker idle forever
//! while it still looked alive. The consumer therefore makes a broker round trip every
//! [`PROBE_EVERY`] under a [`PROBE_TIMEOUT`] deadline and records each success here; `/healthz`
//! fails once the link has made no progress for [`STALL_AFTER`].

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// How often the consumer checks its link with a round trip.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);
/// Longest a probe may wait for the broker's answer before the link counts as stalled.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// `/healthz` fails when the last successful round trip is older than this.
pub const STALL_AFTER: Duration = Duration::from_secs(8);

const NOT_STARTED: u64 = u64::MAX;

/// When the broker last answered (shared by the consumer and `/healthz`), and whether the
/// engine thread still runs.
#[derive(Debug, Clone)]
pub struct BrokerHealth {
    origin: Instant,
    last_ok_ms: Arc<AtomicU64>,
    engine_stopped: Arc<AtomicBool>,
}

impl Default for BrokerHealth {
    fn default() -> Self {
        Self::new()
    }
}

impl BrokerHealth {
    /// Live until the consumer starts (loading the models and the index can take a while);
    /// from then on, live while the broker answers.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ok_ms: Arc::new(AtomicU64::new(NOT_STARTED)),
            engine_stopped: Arc::default(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The broker answered a round trip.
    pub fn progressed(&self) {
        self.last_ok_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// How long since the broker last answered (zero before the consumer started).
    pub fn silent_for(&self) -> Duration {
        let last = self.last_ok_ms.load(Ordering::Relaxed);
        if last == NOT_STARTED {
            return Duration::ZERO;
        }
        Duration::from_millis(self.now_ms().saturating_sub(last))
    }

    /// The engine thread ended: the worker cannot serve again and must be restarted.
    pub fn engine_stopped(&self) {
        self.engine_stopped.store(true, Ordering::Relaxed);
    }

    /// Whether the engine thread has ended.
    pub fn is_engine_stopped(&self) -> bool {
        self.engine_stopped.load(Ordering::Relaxed)
    }

    /// Whether the engine runs and the link made progress within [`STALL_AFTER`].
    pub fn is_live(&self) -> bool {
        !self.is_engine_stopped() && self.silent_for() <= STALL_AFTER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_health_is_live_and_counts_silence() {
        let health = BrokerHealth::new();
        assert!(health.is_live());
        health.progressed();
        assert!(health.silent_for() < STALL_AFTER);
    }
}
