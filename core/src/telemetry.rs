//! Logging and tracing set-up shared by every binary: `tracing` to stderr, an OpenTelemetry
//! layer so spans carry W3C trace ids (propagated over HTTP and AMQP), optional AMQP log
//! forwarding.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::{
    EnvFilter, Layer, filter::LevelFilter, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::amqp::AmqpLogLayer;

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

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.force_flush();
            let _ = provider.shutdown();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Installs the global subscriber: stderr (`RUST_LOG`, default `info`), the OpenTelemetry
/// layer for `service_name` (spans at info and above), and the AMQP log forwarder when given
/// (its own targets, debug and above, whatever `RUST_LOG` says). Each layer filters for itself.
pub fn init(service_name: &'static str, forwarder: Option<AmqpLogLayer>) -> TelemetryGuard {
    let provider = SdkTracerProvider::builder()
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name)
                .build(),
        )
        .build();
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
    TelemetryGuard {
        provider: Some(provider),
    }
}
