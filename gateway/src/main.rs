//! `gateway` binary: parse configuration, connect, serve until SIGTERM / Ctrl-C.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use facematch_core::{amqp::Publisher, config::redact_url, store::Store, telemetry};
use gateway::{
    AppState, app_with,
    auth::{Auth, AuthMode},
    config::Args,
    fetch::FetchConfig,
    limits::Limits,
    metrics_app,
    server::{ServerConfig, serve},
    waiters::WaiterLimits,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Err(refusal) = args.check_exposure() {
        eprintln!("gateway: {refusal}");
        std::process::exit(2);
    }
    let admin_key = match args.admin_key() {
        Ok(key) => key,
        Err(e) => {
            eprintln!("gateway: {e}");
            std::process::exit(2);
        }
    };
    gateway::metrics::registry().keep_up();
    // One publisher carries the jobs and this process's log lines.
    let (telemetry, publisher) = telemetry::init_with_amqp_logs(
        "facematch-gateway",
        "rest",
        vec!["gateway", "facematch", "facematch_core"],
        &args.service.telemetry,
        &args.service.amqp,
        Publisher::start,
    );
    let store = Store::open(
        &args.service.redis.redis_url,
        &args.service.redis.key_prefix,
    )
    .context("invalid FACEMATCH_REDIS_URL")?;
    wait_for_schema(&store).await?;
    if args.auth == AuthMode::Required && admin_key.is_none() {
        tracing::warn!(
            "FACEMATCH_AUTH=required without FACEMATCH_ADMIN_KEY_FILE: only keys already in Redis work, and none can be made through this gateway without one"
        );
    }
    tokio::spawn(gateway::sweeper::sweep_forever(
        store.clone(),
        args.pending_timeout,
    ));
    let state = AppState::new(
        store,
        publisher.clone(),
        FetchConfig::new(args.max_body, args.allow_private_urls),
        args.max_body,
        args.max_in_flight,
    )
    .context("cannot build the URL fetcher")?
    .with_limits(Limits {
        body_timeout: args.body_timeout,
        min_body_rate: args.min_body_rate,
        stall_timeout: args.body_stall_timeout,
        max_buffered: args.max_buffered,
        max_buffered_per_address: args.max_buffered_per_address,
    })
    .with_requeue_after(args.requeue_after)
    .with_max_image_pixels(args.max_image_pixels)
    .with_match_threshold(args.threshold)
    .with_waiter_limits(WaiterLimits {
        total: args.max_waiters,
        per_address: args.max_waiters_per_address,
    })
    .with_auth(
        Auth::new(args.auth, admin_key.as_deref())
            .with_failure_limit(args.auth_failures_per_minute),
    );
    tracing::info!(
        listen = %args.listen,
        amqp = %redact_url(&args.service.amqp.amqp_url),
        redis = %redact_url(&args.service.redis.redis_url),
        key_prefix = %args.service.redis.key_prefix,
        max_body = args.max_body,
        max_buffered = args.max_buffered,
        header_timeout = ?args.header_timeout,
        body_timeout = ?args.body_timeout,
        min_body_rate = args.min_body_rate,
        requeue_after = ?args.requeue_after,
        auth = ?args.auth,
        "gateway starting"
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let config = ServerConfig {
        header_timeout: args.header_timeout,
        max_connections: args.max_connections,
        max_connections_per_address: args.max_connections_per_address,
        grace: Duration::from_secs(10),
    };
    let with_metrics = match args.metrics_listen {
        None => true,
        Some(addr) => {
            let metrics = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for /metrics"))?;
            let metrics_config = ServerConfig {
                max_connections: 64,
                ..config.clone()
            };
            tokio::spawn(serve(
                metrics,
                metrics_app(),
                metrics_config,
                std::future::pending(),
            ));
            false
        }
    };
    serve(
        listener,
        app_with(state, with_metrics),
        config,
        shutdown_signal(),
    )
    .await;
    tracing::info!("gateway stopped");
    publisher.close().await;
    telemetry.shutdown();
    Ok(())
}

/// Moves a store made before collections into `default` (once, whichever process gets there
/// first) and makes sure `default` exists; waits out a Redis that is not up yet.
async fn wait_for_schema(store: &Store) -> anyhow::Result<()> {
    loop {
        match store.ensure_schema(Duration::from_secs(300)).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "waiting for Redis to check the key layout");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).context("cannot check or move the store's key layout"),
        }
    }
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
