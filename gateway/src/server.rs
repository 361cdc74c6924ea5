//! The HTTP/1.1 server: the poem application served by hyper directly, because poem's own
//! server offers no header read timeout. Here every connection gets one (it also bounds how
//! long an idle keep-alive connection is kept), the number of open connections is capped
//! (more wait in the kernel's backlog), so is the number per client address (more are
//! answered 429 at once: [`crate::connections`]), and shutdown is graceful: stop accepting, let the
//! requests in hand finish for up to `grace`, then close.

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use crate::connections::{PerAddress, refuse};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::{
    Addr, Endpoint, EndpointExt, Request, Response,
    endpoint::BoxEndpoint,
    http::uri::Scheme,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
    task::JoinSet,
};

/// How the server treats connections.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Longest time to receive a request's headers (and to wait for the next request on a
    /// keep-alive connection).
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one client address (0: no cap); more get 429.
    pub max_connections_per_address: usize,
    /// How long requests in hand may run on after shutdown begins.
    pub grace: Duration,
}

/// Serves `endpoint` on `listener` until `shutdown` resolves, then drains.
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) where
    E: Endpoint + 'static,
{
    let endpoint: Arc<BoxEndpoint<'static, Response>> =
        Arc::new(endpoint.map_to_response().boxed());
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let per_address = PerAddress::new(config.max_connections_per_address);
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, remote)) => {
                let Some(counted) = per_address.admit(remote.ip()) else {
                    drop(slot);
                    tokio::spawn(refuse(stream));
                    continue;
                };
                let (endpoint, stopped) = (endpoint.clone(), stopped.clone());
                let timeout = config.header_timeout;
                connections.spawn(async move {
                    serve_connection(stream, remote, endpoint, timeout, stopped).await;
                    drop((slot, counted));
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        while connections.try_join_next().is_some() {}
    }
    let _ = stop.send(true);
    let drained = tokio::time::timeout(config.grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "closing connections still busy after the grace period"
        );
        connections.abort_all();
    }
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    endpoint: Arc<BoxEndpoint<'static, Response>>,
    header_timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let (local, remote) = (
        LocalAddr(Addr::SocketAddr(local)),
        RemoteAddr(Addr::SocketAddr(remote)),
    );
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let endpoint = endpoint.clone();
        let req = Request::from((req, local.clone(), remote.clone(), Scheme::HTTP));
        async move {
            let resp = endpoint.get_response(req).await;
            Ok::<_, Infallible>(hyper::Response::from(resp))
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopped.wait_for(|stop| *stop) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
