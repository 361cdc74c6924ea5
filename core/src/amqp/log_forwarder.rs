//! Copies this process's own log events to the `logs` topic exchange as
//! `<hostname>.<component>.<level>` (the seed's `<hostname>.rest.info`), best effort: a full
//! buffer or a broker outage drops lines rather than slowing the process down. Lines that
//! wait together are published together, one message per routing key.

use std::fmt::Write as _;

use tokio::sync::mpsc;
use tracing::{Event, Level, Subscriber, field::Visit};
use tracing_subscriber::{Layer, layer::Context};

use super::Publisher;

/// One formatted event waiting to be published.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub routing_key: String,
    pub text: String,
}

/// The routing key of a line: `<hostname>.<component>.<level>`.
pub fn log_routing_key(component: &str, level: &Level) -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("{host}.{component}.{}", level.as_str().to_ascii_lowercase())
}

/// A `tracing` layer that forwards events whose target starts with one of `targets`.
#[derive(Debug)]
pub struct AmqpLogLayer {
    host: String,
    component: &'static str,
    targets: Vec<&'static str>,
    sender: mpsc::Sender<LogLine>,
}

impl AmqpLogLayer {
    /// The layer and the receiving end to hand to [`forward_logs`].
    pub fn new(
        component: &'static str,
        targets: Vec<&'static str>,
    ) -> (Self, mpsc::Receiver<LogLine>) {
        let (sender, receiver) = mpsc::channel(1024);
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        (
            Self {
                host,
                component,
                targets,
                sender,
            },
            receiver,
        )
    }

    /// The per-layer filter: this layer's targets at debug and above.
    pub fn targets_filter(&self) -> tracing_subscriber::filter::Targets {
        self.targets.iter().fold(
            tracing_subscriber::filter::Targets::new(),
            |filter, target| filter.with_target(*target, Level::DEBUG),
        )
    }
}

struct LineVisitor(String);

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for AmqpLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut visitor = LineVisitor(String::new());
        event.record(&mut visitor);
        let level = meta.level().as_str().to_ascii_lowercase();
        let line = LogLine {
            routing_key: format!("{}.{}.{level}", self.host, self.component),
            text: format!("{} {}: {}", meta.level(), meta.target(), visitor.0),
        };
        // Full buffer: drop the line; logging must never block the request path.
        let _ = self.sender.try_send(line);
    }
}

/// Most lines [`forward_logs`] takes from the buffer at once.
const MAX_LINES_PER_ROUND: usize = 256;

/// Publishes forwarded lines until every sender is gone. While the broker is away, lines wait
/// in the buffer (each at most a few seconds) instead of being dropped at once, so the lines of
/// start-up and of a short outage still arrive.
///
/// Each round takes every line already waiting (up to 256) and publishes
/// one message per routing key, its lines joined by newlines in the order they were logged. A
/// quiet process sends a message per line, as before; under load the broker gets a few
/// messages per round instead of several per request.
pub async fn forward_logs(mut lines: mpsc::Receiver<LogLine>, publisher: Publisher) {
    let mut round = Vec::with_capacity(MAX_LINES_PER_ROUND);
    while lines.recv_many(&mut round, MAX_LINES_PER_ROUND).await > 0 {
        if !publisher.is_ready().await {
            publisher
                .wait_ready(std::time::Duration::from_secs(5))
                .await;
        }
        for (routing_key, text) in by_routing_key(round.drain(..)) {
            let _ = publisher.publish_log(&routing_key, &text).await;
        }
    }
}

/// The lines grouped by routing key, keys in order of their first line, each group's lines
/// joined by newlines in their own order.
fn by_routing_key(lines: impl IntoIterator<Item = LogLine>) -> Vec<(String, String)> {
    let mut groups: Vec<(String, String)> = Vec::new();
    for line in lines {
        match groups.iter_mut().find(|(key, _)| *key == line.routing_key) {
            Some((_, text)) => {
                text.push('\n');
                text.push_str(&line.text);
            }
            None => groups.push((line.routing_key, line.text)),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(key: &str, text: &str) -> LogLine {
        LogLine {
            routing_key: key.to_owned(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn lines_are_grouped_per_key_in_order() {
        let groups = by_routing_key([
            line("h.rest.debug", "upload a"),
            line("h.rest.info", "POST a 200"),
            line("h.rest.debug", "upload b"),
            line("h.rest.info", "POST b 200"),
            line("h.rest.warn", "slow"),
        ]);
        assert_eq!(
            groups,
            [
                ("h.rest.debug".to_owned(), "upload a\nupload b".to_owned()),
                (
                    "h.rest.info".to_owned(),
                    "POST a 200\nPOST b 200".to_owned()
                ),
                ("h.rest.warn".to_owned(), "slow".to_owned()),
            ]
        );
        assert!(by_routing_key([]).is_empty());
    }
}
