//! The worker's small HTTP port: `/metrics` (Prometheus text) and `/healthz` (503 once the
//! broker link has made no progress for a while, or the engine thread has stopped; see
//! [`super::health`]).

use std::net::SocketAddr;

use poem::{
    EndpointExt, Route, Server, get, handler,
    listener::{Acceptor, Listener, TcpListener},
    web::Data,
};

use super::{Metrics, health::BrokerHealth};

#[handler]
fn render_metrics(Data(metrics): Data<&Metrics>) -> poem::Response {
    poem::Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.registry().render())
}

#[handler]
fn healthz(Data(health): Data<&BrokerHealth>) -> poem::Response {
    if health.is_live() {
        return poem::Response::builder().body("ok");
    }
    if health.is_engine_stopped() {
        return poem::Response::builder()
            .status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
            .body("the engine thread has stopped; the worker must be restarted");
    }
    poem::Response::builder()
        .status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
        .body(format!(
            "the broker link has made no progress for {} s",
            health.silent_for().as_secs()
        ))
}

/// Binds `addr` and serves in the background; returns the bound address.
pub async fn start(
    addr: SocketAddr,
    metrics: Metrics,
    health: BrokerHealth,
) -> std::io::Result<SocketAddr> {
    let acceptor = TcpListener::bind(addr).into_acceptor().await?;
    let bound = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .unwrap_or(addr);
    let app = Route::new()
        .at("/metrics", get(render_metrics))
        .at("/healthz", get(healthz))
        .data(metrics)
        .data(health);
    tokio::spawn(async move {
        if let Err(e) = Server::new_with_acceptor(acceptor).run(app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(bound)
}
