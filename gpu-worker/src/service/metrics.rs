//! The worker's metrics: jobs by outcome, batch size, inference time per stage, index size,
//! Redis retries — recorded with the `metrics` crate into this worker's own registry and served
//! as Prometheus text on the worker's small HTTP port.

use facematch_core::metrics::{
    Registry, SECONDS_BUCKETS, SIZE_BUCKETS, counter, describe_counter, describe_gauge,
    describe_histogram, gauge, histogram,
};

use crate::StageTimings;

const JOBS: &str = "facematch_worker_jobs_total";
const BATCH_SIZE: &str = "facematch_worker_batch_size";
const INFERENCE_SECONDS: &str = "facematch_worker_inference_seconds";
const QUEUE_SECONDS: &str = "facematch_worker_queue_seconds";
const INDEX_FACES: &str = "facematch_worker_index_faces";
const INDEX_BYTES: &str = "facematch_worker_index_bytes";
const REDIS_RETRIES: &str = "facematch_worker_redis_retries_total";
const SETTLE_FAILURES: &str = "facematch_worker_settle_failures_total";

/// Typed recorders over one worker's [`Registry`].
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new(
            &[
                (BATCH_SIZE, SIZE_BUCKETS),
                (INFERENCE_SECONDS, SECONDS_BUCKETS),
                (QUEUE_SECONDS, SECONDS_BUCKETS),
            ],
            || {
                describe_counter!(JOBS, "Jobs handled, by outcome.");
                describe_histogram!(BATCH_SIZE, "Images per inference batch.");
                describe_histogram!(INFERENCE_SECONDS, "Inference time per batch, by stage.");
                describe_histogram!(
                    QUEUE_SECONDS,
                    "Time from delivery to the start of the job's batch."
                );
                describe_gauge!(INDEX_FACES, "Faces in the in-memory index.");
                describe_gauge!(INDEX_BYTES, "Bytes held by the in-memory index.");
                describe_counter!(
                    REDIS_RETRIES,
                    "Redis steps retried after a transient failure."
                );
                describe_counter!(
                    SETTLE_FAILURES,
                    "Acks, requeues and rejects the broker connection did not take (failed or \
                     timed out), by operation: the job may be delivered again."
                );
            },
        );
        Self { registry }
    }
}

impl Metrics {
    /// The underlying registry (rendered by `/metrics`).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// An ack, requeue or reject (`op`) that the broker connection did not take.
    pub fn settle_failure(&self, op: &'static str) {
        self.registry
            .record(|| counter!(SETTLE_FAILURES, "op" => op).increment(1));
    }

    /// One job ended: `done`, `failed`, `duplicate`, `requeued`, `malformed`, `poison`,
    /// `dead_lettered`, `damaged` or `gone`.
    pub fn job(&self, outcome: &'static str) {
        self.registry
            .record(|| counter!(JOBS, "outcome" => outcome).increment(1));
    }

    /// One batch went through the networks.
    pub fn inference(&self, batch_size: usize, timings: &StageTimings) {
        self.registry.record(|| {
            histogram!(BATCH_SIZE).record(batch_size as f64);
            for (stage, d) in [
                ("detect", timings.detect),
                ("landmarks", timings.landmarks),
                ("align", timings.align),
                ("describe", timings.describe),
            ] {
                histogram!(INFERENCE_SECONDS, "stage" => stage).record(d.as_secs_f64());
            }
        });
    }

    /// Time a job waited between delivery and the start of its batch.
    pub fn queue_time(&self, seconds: f64) {
        self.registry
            .record(|| histogram!(QUEUE_SECONDS).record(seconds));
    }

    /// Size of the in-memory face index.
    pub fn index(&self, faces: usize, bytes: usize) {
        self.registry.record(|| {
            gauge!(INDEX_FACES).set(faces as f64);
            gauge!(INDEX_BYTES).set(bytes as f64);
        });
    }

    /// A Redis step failed and will be retried.
    pub fn redis_retry(&self) {
        self.registry
            .record(|| counter!(REDIS_RETRIES).increment(1));
    }
}
