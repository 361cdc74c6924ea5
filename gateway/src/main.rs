//! `gateway` binary: parse configuration, connect, serve until SIGTERM / Ctrl-C.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use facematch_core::{
    amqp::{AmqpLogLayer, Publisher, Topology, forward_logs},
    config::redact_url,
    store::Store,
    telemetry,
};
use gateway::{AppState, app, config::Args, fetch::FetchConfig};
use poem::{Server, listener::TcpListener};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (forwarder, lines) =
        AmqpLogLayer::new("rest", vec!["gateway", "facematch", "facematch_core"]);
    let telemetry = telemetry::init(
        "facematch-gateway",
        Some(forwarder),
        args.telemetry.otlp_endpoint.as_deref(),
    );

    let publisher = Publisher::start(
        args.amqp.amqp_url.clone(),
        Topology::new(args.amqp.amqp_prefix.clone()),
    );
    tokio::spawn(forward_logs(lines, publisher.clone()));
    let store = Store::open(&args.redis.redis_url, &args.redis.key_prefix)
        .context("invalid FACEMATCH_REDIS_URL")?;
    let state = AppState::new(
        store,
        publisher.clone(),
        FetchConfig::new(args.max_body, args.allow_private_urls),
        args.max_body,
        args.max_in_flight,
    )
    .context("cannot build the URL fetcher")?;
    tracing::info!(
        listen = %args.listen,
        amqp = %redact_url(&args.amqp.amqp_url),
        redis = %redact_url(&args.redis.redis_url),
        key_prefix = %args.redis.key_prefix,
        max_body = args.max_body,
        "gateway starting"
    );
    Server::new(TcpListener::bind(args.listen))
        .run_with_graceful_shutdown(app(state), shutdown_signal(), Some(Duration::from_secs(10)))
        .await
        .context("HTTP server failed")?;
    tracing::info!("gateway stopped");
    publisher.close().await;
    telemetry.shutdown();
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
