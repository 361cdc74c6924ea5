//! Exchange and queue names (DESIGN §3) and their idempotent declaration.

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};

/// Routing key of scan jobs on `toWorker`.
pub const SCAN_ROUTING_KEY: &str = "scan";

/// How many deliveries a job gets before it is dead-lettered as poison.
pub const DELIVERY_LIMIT: i32 = 5;

/// Every exchange and queue name, under an optional prefix (empty = the seed's names).
#[derive(Debug, Clone, Default)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    /// Names under `prefix`; tests isolate themselves with a unique one.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The durable direct exchange jobs are published to.
    pub fn to_worker(&self) -> String {
        format!("{}toWorker", self.prefix)
    }

    /// The durable quorum queue workers consume.
    pub fn scan_queue(&self) -> String {
        format!("{}facematch.scan", self.prefix)
    }

    /// The dead-letter exchange of the scan queue.
    pub fn dead_exchange(&self) -> String {
        format!("{}facematch.dlx", self.prefix)
    }

    /// Where poison jobs end.
    pub fn dead_queue(&self) -> String {
        format!("{}facematch.dead", self.prefix)
    }

    /// The topic exchange of log lines.
    pub fn logs(&self) -> String {
        format!("{}logs", self.prefix)
    }

    /// Declares everything (idempotent, so any start order works).
    pub async fn declare(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                self.to_worker().into(),
                ExchangeKind::Direct,
                durable,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                self.dead_exchange().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                self.logs().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;

        let durable_queue = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let mut dead_args = FieldTable::default();
        dead_args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        channel
            .queue_declare(self.dead_queue().into(), durable_queue, dead_args)
            .await?;
        channel
            .queue_bind(
                self.dead_queue().into(),
                self.dead_exchange().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;

        let mut scan_args = FieldTable::default();
        scan_args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        scan_args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.dead_exchange().into()),
        );
        scan_args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(DELIVERY_LIMIT),
        );
        channel
            .queue_declare(self.scan_queue().into(), durable_queue, scan_args)
            .await?;
        channel
            .queue_bind(
                self.scan_queue().into(),
                self.to_worker().into(),
                SCAN_ROUTING_KEY.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }

    /// Consumes the `logs` exchange: a fresh exclusive, auto-delete, server-named queue bound
    /// with each routing-key pattern (`#`, `*.worker.*`, …), without acks.
    pub async fn subscribe_logs(
        &self,
        channel: &Channel,
        patterns: &[&str],
    ) -> Result<lapin::Consumer, lapin::Error> {
        use lapin::options::BasicConsumeOptions;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        for pattern in patterns {
            channel
                .queue_bind(
                    queue.name().clone(),
                    self.logs().into(),
                    (*pattern).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
    }

    /// Deletes everything this topology declared (test clean-up).
    pub async fn delete(&self, channel: &Channel) -> Result<(), lapin::Error> {
        use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
        for queue in [self.scan_queue(), self.dead_queue()] {
            channel
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await?;
        }
        for exchange in [self.to_worker(), self.dead_exchange(), self.logs()] {
            channel
                .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}
