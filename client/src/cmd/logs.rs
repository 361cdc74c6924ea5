//! `facematch logs`: the seed's `logs` container. Binds an exclusive, auto-delete,
//! server-named queue to the `logs` topic exchange (`#` or `--topic` patterns) and writes each
//! line as `<routing key> <text>` to stderr until Ctrl-C. A lost or refused connection is
//! retried with backoff, so the listener can start before the broker and outlive restarts.
//! `--ready-file` exists exactly while a queue is bound (the Kubernetes probes test it).

use std::{io::Write, path::PathBuf, time::Duration};

use clap::Args;
use facematch_core::{
    amqp::{
        Topology,
        lapin::{self, Connection, ConnectionProperties},
    },
    config::{AmqpArgs, redact_url},
};
use futures_util::StreamExt;

use crate::{exit::Outcome, ready_file::ReadyFile};

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// `facematch logs` arguments.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub amqp: AmqpArgs,

    /// Routing-key pattern to bind (`<hostname>.<rest|worker>.<level>`, `*` one word, `#` any
    /// words); repeat for several.
    #[arg(long = "topic", value_name = "PATTERN", default_value = "#")]
    pub topics: Vec<String>,

    /// File that exists while the listener's queue is bound, and is removed when the broker
    /// link is lost and on exit (for probes that can only test a file).
    #[arg(long, env = "FACEMATCH_READY_FILE", value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
}

/// Runs `facematch logs` until Ctrl-C (exit 0).
pub async fn run(args: LogsArgs) -> anyhow::Result<Outcome> {
    let topology = Topology::new(args.amqp.amqp_prefix.clone());
    let broker = redact_url(&args.amqp.amqp_url);
    let ready = ReadyFile::new(args.ready_file.clone());
    ready.clear(); // left over from a killed run
    let listen = async {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let listened = listen(&args, &topology, &ready).await;
            ready.clear();
            match listened {
                Ok(Listened::Bound) => {
                    backoff = FIRST_BACKOFF;
                    eprintln!("facematch logs: lost the connection to {broker}; reconnecting");
                }
                Ok(Listened::NotBound(e)) | Err(e) => {
                    eprintln!(
                        "facematch logs: cannot listen on {broker}: {e}; retrying in {backoff:?}"
                    );
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    };
    tokio::select! {
        () = listen => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    ready.clear();
    Ok(Outcome::Ok)
}

/// How one connection ended.
enum Listened {
    /// Consumed until the connection was lost.
    Bound,
    /// Connected but failed before consuming.
    NotBound(lapin::Error),
}

/// One connection's life: connect, declare, bind, print until the stream ends.
async fn listen(
    args: &LogsArgs,
    topology: &Topology,
    ready: &ReadyFile,
) -> Result<Listened, lapin::Error> {
    let connection =
        Connection::connect(&args.amqp.amqp_url, ConnectionProperties::default()).await?;
    let mut consumer = match bind(&connection, args, topology).await {
        Ok(consumer) => {
            eprintln!(
                "facematch logs: listening to {} on exchange {}",
                args.topics.join(" "),
                topology.logs()
            );
            ready.set(&format!("bound to {}\n", topology.logs()));
            consumer
        }
        Err(e) => {
            let _ = connection.close(200, "bind failed".into()).await;
            return Ok(Listened::NotBound(e));
        }
    };
    while let Some(delivery) = consumer.next().await {
        let Ok(delivery) = delivery else { break };
        let text = String::from_utf8_lossy(&delivery.data);
        let mut stderr = std::io::stderr().lock();
        // A message may carry several lines (the forwarder groups lines logged together).
        for line in text.trim_end().lines() {
            let _ = writeln!(stderr, "{} {line}", delivery.routing_key);
        }
    }
    Ok(Listened::Bound)
}

async fn bind(
    connection: &Connection,
    args: &LogsArgs,
    topology: &Topology,
) -> Result<lapin::Consumer, lapin::Error> {
    let channel = connection.create_channel().await?;
    topology.declare(&channel).await?;
    let patterns: Vec<&str> = args.topics.iter().map(String::as_str).collect();
    topology.subscribe_logs(&channel, &patterns).await
}
