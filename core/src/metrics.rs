//! A small Prometheus registry (counters, gauges, histograms with labels) rendered in the text
//! exposition format; shared by the gateway's and the worker's `/metrics`.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{Arc, Mutex},
};

/// Latency buckets in seconds.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Batch-size buckets.
pub const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug)]
enum Series {
    Value(f64),
    Histogram {
        bounds: &'static [f64],
        counts: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

#[derive(Debug)]
struct Family {
    help: &'static str,
    kind: Kind,
    series: BTreeMap<String, Series>,
}

/// A set of metric families, cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct MetricSet {
    families: Arc<Mutex<BTreeMap<&'static str, Family>>>,
}

fn label_text(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

impl MetricSet {
    fn with_series(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &[(&str, &str)],
        make: impl FnOnce() -> Series,
        update: impl FnOnce(&mut Series),
    ) {
        let Ok(mut families) = self.families.lock() else {
            return;
        };
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        update(family.series.entry(label_text(labels)).or_insert_with(make));
    }

    fn update_value(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &[(&str, &str)],
        update: impl FnOnce(&mut f64),
    ) {
        self.with_series(
            name,
            help,
            kind,
            labels,
            || Series::Value(0.0),
            |s| {
                if let Series::Value(v) = s {
                    update(v);
                }
            },
        );
    }

    /// Adds `by` to a counter.
    pub fn inc(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], by: f64) {
        self.update_value(name, help, Kind::Counter, labels, |v| *v += by);
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], value: f64) {
        self.update_value(name, help, Kind::Gauge, labels, |v| *v = value);
    }

    /// Adds `by` to a gauge (negative to decrease).
    pub fn add(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], by: f64) {
        self.update_value(name, help, Kind::Gauge, labels, |v| *v += by);
    }

    /// Records one observation in a histogram.
    pub fn observe(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: f64,
        bounds: &'static [f64],
    ) {
        self.with_series(
            name,
            help,
            Kind::Histogram,
            labels,
            || Series::Histogram {
                bounds,
                counts: vec![0; bounds.len()],
                sum: 0.0,
                count: 0,
            },
            |s| {
                if let Series::Histogram {
                    bounds,
                    counts,
                    sum,
                    count,
                } = s
                {
                    for (b, c) in bounds.iter().zip(counts.iter_mut()) {
                        if value <= *b {
                            *c += 1;
                        }
                    }
                    *sum += value;
                    *count += 1;
                }
            },
        );
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let Ok(families) = self.families.lock() else {
            return String::new();
        };
        let mut out = String::new();
        for (name, family) in families.iter() {
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, series) in &family.series {
                match series {
                    Series::Value(v) => {
                        let _ = writeln!(out, "{name}{labels} {v}");
                    }
                    Series::Histogram {
                        bounds,
                        counts,
                        sum,
                        count,
                    } => {
                        let inner = labels.trim_start_matches('{').trim_end_matches('}');
                        let sep = if inner.is_empty() { "" } else { "," };
                        for (b, c) in bounds.iter().zip(counts) {
                            let _ = writeln!(out, "{name}_bucket{{{inner}{sep}le=\"{b}\"}} {c}");
                        }
                        let _ = writeln!(out, "{name}_bucket{{{inner}{sep}le=\"+Inf\"}} {count}");
                        let _ = writeln!(out, "{name}_sum{labels} {sum}");
                        let _ = writeln!(out, "{name}_count{labels} {count}");
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let m = MetricSet::default();
        m.inc("jobs_total", "Jobs.", &[("outcome", "done")], 1.0);
        m.inc("jobs_total", "Jobs.", &[("outcome", "done")], 2.0);
        m.set("index_faces", "Faces.", &[], 7.0);
        m.observe("batch_size", "Batch.", &[], 3.0, SIZE_BUCKETS);
        let text = m.render();
        assert!(text.contains("# TYPE jobs_total counter"));
        assert!(text.contains("jobs_total{outcome=\"done\"} 3"));
        assert!(text.contains("index_faces 7"));
        assert!(text.contains("batch_size_bucket{le=\"2\"} 0"));
        assert!(text.contains("batch_size_bucket{le=\"4\"} 1"));
        assert!(text.contains("batch_size_bucket{le=\"+Inf\"} 1"));
        assert!(text.contains("batch_size_count 1"));
    }
}
