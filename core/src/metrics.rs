//! Prometheus metrics through the `metrics` crate and its Prometheus exporter, shared by the
//! gateway's and the worker's `/metrics`.
//!
//! Each part that serves `/metrics` (a gateway, a worker) owns a [`Registry`]: an exporter
//! recorder that is *not* installed as the process's global recorder, so the several gateways
//! and workers a test runs in one process keep their own counts. Code records with the standard
//! `metrics` macros inside [`Registry::record`].

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

pub use ::metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

/// Latency buckets in seconds.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Batch-size buckets.
pub const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// One part's metrics: a Prometheus recorder and the handle that renders it. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry whose histograms named in `histograms` have those bucket bounds (others are
    /// rendered as summaries), with every metric described by `describe` (run once, inside
    /// [`Self::record`], so its `describe_*!` calls land here).
    pub fn new(histograms: &[(&str, &[f64])], describe: impl FnOnce()) -> Self {
        let mut builder = PrometheusBuilder::new();
        for (name, bounds) in histograms {
            builder = builder
                .set_buckets_for_metric(Matcher::Full((*name).to_owned()), bounds)
                .unwrap_or_else(|e| panic!("buckets of {name}: {e}"));
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let registry = Self {
            recorder: Arc::new(recorder),
            handle,
        };
        registry.record(describe);
        registry
    }

    /// Runs `f` with this registry as the recorder of the `metrics` macros.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        ::metrics::with_local_recorder(self.recorder.as_ref(), f)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds histogram samples into their buckets every few seconds while this registry lives,
    /// so memory stays flat when nobody scrapes. Needs a tokio runtime; call once per registry.
    pub fn keep_up(&self) {
        let weak: Weak<PrometheusRecorder> = Arc::downgrade(&self.recorder);
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_EVERY);
            loop {
                tick.tick().await;
                if weak.strong_count() == 0 {
                    return;
                }
                handle.run_upkeep();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::parse_prometheus;

    fn registry() -> Registry {
        Registry::new(&[("batch_size", SIZE_BUCKETS)], || {
            describe_counter!("jobs_total", "Jobs.");
            describe_gauge!("index_faces", "Faces.");
            describe_histogram!("batch_size", "Batch.");
        })
    }

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let m = registry();
        m.record(|| {
            counter!("jobs_total", "outcome" => "done").increment(1);
            counter!("jobs_total", "outcome" => "done").increment(2);
            gauge!("index_faces").set(7.0);
            histogram!("batch_size").record(3.0);
        });
        let text = m.render();
        assert!(text.contains("# HELP jobs_total Jobs."), "{text}");
        assert!(text.contains("# TYPE jobs_total counter"), "{text}");
        assert!(text.contains("# TYPE batch_size histogram"), "{text}");
        let values = parse_prometheus(&text).expect("parses");
        assert_eq!(values[r#"jobs_total{outcome="done"}"#], 3.0);
        assert_eq!(values["index_faces"], 7.0);
        assert_eq!(values[r#"batch_size_bucket{le="2"}"#], 0.0);
        assert_eq!(values[r#"batch_size_bucket{le="4"}"#], 1.0);
        assert_eq!(values[r#"batch_size_bucket{le="+Inf"}"#], 1.0);
        assert_eq!(values["batch_size_count"], 1.0);
    }

    #[test]
    fn registries_keep_their_own_counts() {
        let (a, b) = (registry(), registry());
        a.record(|| counter!("jobs_total", "outcome" => "done").increment(5));
        b.record(|| counter!("jobs_total", "outcome" => "done").increment(1));
        let count = |r: &Registry| parse_prometheus(&r.render()).expect("parses")[r#"jobs_total{outcome="done"}"#];
        assert_eq!((count(&a), count(&b)), (5.0, 1.0));
    }
}
