//! Logging and tracing set-up shared by every binary: `tracing` to stderr, an OpenTelemetry
//! layer so spans carry W3C trace ids (propagated over HTTP and AMQP), OTLP/HTTP export to a
//! collector (Jaeger) when an endpoint is configured, optional AMQP log forwarding.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::{
    EnvFilter, Layer, filter::LevelFilter, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::{
    amqp::{AmqpLogLayer, Publisher, Topology, forward_logs},
    config::{AmqpArgs, TelemetryArgs},
};

/// Flushes and shuts telemetry down when dropped (or on [`TelemetryGuard::shutdown`]).
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes pending spans and stops the exporter.
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// Sends every finished span now.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider {
            blocking(|| {
                let _ = provider.force_flush();
            });
        }
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take() {
            blocking(move || {
                let _ = provider.force_flush();
                let _ = provider.shutdown();
            });
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs blocking exporter work, off the async worker threads when inside a runtime.
fn blocking(f: impl FnOnce()) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f);
        }
        _ => f(),
    }
}

/// The OTLP/HTTP traces URL for a collector endpoint (`/v1/traces` appended unless given).
pub fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    }
}

/// A service's start-up of logging and tracing: [`init`] for `service_name`, with this
/// process's log lines (those of `targets`) also published to the `logs` exchange as
/// `<hostname>.<component>.<level>` by a publisher made here with `start` —
/// [`Publisher::start`] for a process that also publishes its jobs with it (the gateway),
/// [`Publisher::start_logs_only`] for one that publishes none (a worker). The publisher is
/// returned so the caller closes it last (a tokio runtime must be running).
pub fn init_with_amqp_logs(
    service_name: &'static str,
    component: &'static str,
    targets: Vec<&'static str>,
    telemetry: &TelemetryArgs,
    amqp: &AmqpArgs,
    start: fn(String, Topology) -> Publisher,
) -> (TelemetryGuard, Publisher) {
    let (forwarder, lines) = AmqpLogLayer::new(component, targets);
    let guard = init(
        service_name,
        Some(forwarder),
        telemetry.otlp_endpoint.as_deref(),
    );
    let publisher = start(
        amqp.amqp_url.clone(),
        Topology::new(amqp.amqp_prefix.clone()),
    );
    tokio::spawn(forward_logs(lines, publisher.clone()));
    (guard, publisher)
}

/// Installs the global subscriber: stderr (`RUST_LOG`, default `info`), the OpenTelemetry
/// layer for `service_name` (spans at info and above), and the AMQP log forwarder when given
/// (its own targets, debug and above, whatever `RUST_LOG` says). Each layer filters for itself.
pub fn init(
    service_name: &'static str,
    forwarder: Option<AmqpLogLayer>,
    otlp_endpoint: Option<&str>,
) -> TelemetryGuard {
    let mut builder = SdkTracerProvider::builder().with_resource(
        opentelemetry_sdk::Resource::builder()
            .with_service_name(service_name)
            .build(),
    );
    let mut export_error = None;
    if let Some(endpoint) = otlp_endpoint.filter(|e| !e.is_empty()) {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(traces_url(endpoint))
            .build();
        match exporter {
            Ok(exporter) => builder = builder.with_batch_exporter(exporter),
            Err(e) => export_error = Some(format!("OTLP export to {endpoint} is off: {e}")),
        }
    }
    let provider = builder.build();
    let tracer = provider.tracer(service_name);
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,lapin=warn,amq_protocol=warn"));
    let result = tracing_subscriber::registry()
        .with(forwarder.map(|layer| {
            let targets = layer.targets_filter();
            layer.with_filter(targets)
        }))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(LevelFilter::INFO),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        .try_init();
    if let Err(e) = result {
        eprintln!("telemetry already initialised: {e}");
    }
    match (export_error, otlp_endpoint) {
        (Some(e), _) => tracing::warn!("{e}"),
        (None, Some(endpoint)) => tracing::info!(endpoint, "exporting traces with OTLP/HTTP"),
        (None, None) => {}
    }
    TelemetryGuard {
        provider: Some(provider),
    }
}
