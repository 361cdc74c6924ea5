//! The worker's metrics: jobs by outcome, batch size, inference time per stage, index size,
//! Redis retries — served as Prometheus text on the worker's small HTTP port.

use facematch_core::metrics::{MetricSet, SECONDS_BUCKETS, SIZE_BUCKETS};

use crate::StageTimings;

/// Typed recorders over one [`MetricSet`].
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    set: MetricSet,
}

impl Metrics {
    /// The underlying set (rendered by `/metrics`).
    pub fn set(&self) -> &MetricSet {
        &self.set
    }

    /// One job ended: `done`, `failed`, `duplicate`, `requeued` or `malformed`.
    pub fn job(&self, outcome: &str) {
        self.set.inc(
            "facematch_worker_jobs_total",
            "Jobs handled, by outcome.",
            &[("outcome", outcome)],
            1.0,
        );
    }

    /// One batch went through the networks.
    pub fn inference(&self, batch_size: usize, timings: &StageTimings) {
        self.set.observe(
            "facematch_worker_batch_size",
            "Images per inference batch.",
            &[],
            batch_size as f64,
            SIZE_BUCKETS,
        );
        for (stage, d) in [
            ("detect", timings.detect),
            ("landmarks", timings.landmarks),
            ("align", timings.align),
            ("describe", timings.describe),
        ] {
            self.set.observe(
                "facematch_worker_inference_seconds",
                "Inference time per batch, by stage.",
                &[("stage", stage)],
                d.as_secs_f64(),
                SECONDS_BUCKETS,
            );
        }
    }

    /// Time a job waited between delivery and the start of its batch.
    pub fn queue_time(&self, seconds: f64) {
        self.set.observe(
            "facematch_worker_queue_seconds",
            "Time from delivery to the start of the job's batch.",
            &[],
            seconds,
            SECONDS_BUCKETS,
        );
    }

    /// Size of the in-memory face index.
    pub fn index(&self, faces: usize, bytes: usize) {
        self.set.set(
            "facematch_worker_index_faces",
            "Faces in the in-memory index.",
            &[],
            faces as f64,
        );
        self.set.set(
            "facematch_worker_index_bytes",
            "Bytes held by the in-memory index.",
            &[],
            bytes as f64,
        );
    }

    /// A Redis step failed and will be retried.
    pub fn redis_retry(&self) {
        self.set.inc(
            "facematch_worker_redis_retries_total",
            "Redis steps retried after a transient failure.",
            &[],
            1.0,
        );
    }
}
