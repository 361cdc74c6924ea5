//! `gpu-worker serve` (the default): telemetry with log forwarding to the `logs` exchange, then
//! the service until SIGTERM / Ctrl-C.

use facematch_core::{amqp::Publisher, telemetry};
use gpu_worker::service::{self, ServeArgs};
use tokio::sync::watch;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let (telemetry, logs) = telemetry::init_with_amqp_logs(
            "facematch-worker",
            "worker",
            vec!["gpu_worker", "facematch", "facematch_core"],
            &args.service.telemetry,
            &args.service.amqp,
            Publisher::start_logs_only,
        );

        let (stop, shutdown) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested: finishing the batch in hand");
            let _ = stop.send(true);
        });
        let result = service::run(args, shutdown).await;
        logs.close().await;
        telemetry.shutdown();
        result.map_err(anyhow::Error::from)
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
